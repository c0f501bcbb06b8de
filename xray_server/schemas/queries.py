"""Query-string parameters of the read endpoints, each defined once as a dataclass the read path
takes, with the schema that loads it. Unknown parameters are refused, so a typo such as
`min_drop=0.9` is an error rather than a silently unfiltered answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marshmallow import fields, validate

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.contract.vocabulary import RUN_STATUSES, STEP_STATUSES, STEP_TYPES
from xray_server.schemas.fields import TagFilter, Text, TimeBound
from xray_server.schemas.records import param, schema_for

L = DEFAULT_LIMITS
_ratio = validate.Range(min=0.0, max=1.0)
# The most rows `total=true` counts exactly.
TOTAL_BOUND = 10_000
# How many earlier runs explain holds a run to when the caller does not say (`analysis/thresholds.py`
# has why).
DEFAULT_BASELINE_RUNS = 200


def _name() -> Text:
    return Text(validate=validate.Length(min=1, max=L.max_name_chars))


def _tags() -> fields.List:
    return fields.List(TagFilter(), validate=validate.Length(max=L.max_tags))


def _json_filters() -> fields.List:
    """`key:value` (or `key=value`) on a top-level key of a run's outcome or metadata."""
    return fields.List(TagFilter(), validate=validate.Length(max=L.max_tags))


def _label() -> Text:
    return Text(validate=validate.Length(min=1, max=L.max_reason_chars))


def _step_types() -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(STEP_TYPES)))


@dataclass(kw_only=True)
class Window:
    """A time window over `started_at`: RFC 3339 or an age (`30m`, `24h`, `7d`)."""

    since: datetime | None = param(TimeBound())
    until: datetime | None = param(TimeBound())


@dataclass(kw_only=True)
class Page(Window):
    """Keyset pagination: `limit` rows, then follow `next_cursor`."""

    limit: int = param(fields.Integer(validate=validate.Range(min=1, max=L.max_page_size)), default=L.default_page_size)
    cursor: str | None = param(fields.String(validate=validate.Length(max=512)))
    # Count every matching row too (the whole query, not what is left after the cursor), exactly up
    # to TOTAL_BOUND and then as "more than": a count past it costs more than a page.
    total: bool = param(fields.Boolean(), default=False)


@dataclass(kw_only=True)
class StepFilters:
    """What a step did: the filters `/steps` and `/patterns` share. Ratios are inclusive bounds."""

    step_type: list[str] = param(_step_types(), default_factory=list)
    name: str | None = param(_name())
    status: str | None = param(fields.String(validate=validate.OneOf(STEP_STATUSES)))
    min_drop_ratio: float | None = param(fields.Float(allow_nan=False, validate=_ratio))
    max_drop_ratio: float | None = param(fields.Float(allow_nan=False, validate=_ratio))
    violations: bool | None = param(fields.Boolean())
    # One violation code (`unknown_step_type:fitler`), or every code of a kind (`unknown_step_type`).
    violation: str | None = param(Text(validate=validate.Length(min=1, max=L.max_metric_key_chars * 2)))
    reason: str | None = param(Text(validate=validate.Length(min=1, max=L.max_reason_chars)))
    min_reason_share: float | None = param(fields.Float(allow_nan=False, validate=_ratio))


@dataclass(kw_only=True)
class StepQuery(Page, StepFilters):
    """`GET /api/v1/steps`: steps across runs, newest first."""

    pipeline: str | None = param(_name())
    tag: list[tuple[str, str]] = param(_tags(), default_factory=list)
    outcome: list[tuple[str, str]] = param(_json_filters(), default_factory=list)
    metadata: list[tuple[str, str]] = param(_json_filters(), default_factory=list)
    run_label: str | None = param(_label())


@dataclass(kw_only=True)
class RunQuery(Page):
    """`GET /api/v1/runs`: recent runs, newest first."""

    pipeline: str | None = param(_name())
    entity: str | None = param(_name())
    status: str | None = param(fields.String(validate=validate.OneOf(RUN_STATUSES)))
    tag: list[tuple[str, str]] = param(_tags(), default_factory=list)
    outcome: list[tuple[str, str]] = param(_json_filters(), default_factory=list)
    metadata: list[tuple[str, str]] = param(_json_filters(), default_factory=list)
    label: str | None = param(_label())
    # The runs whose id starts with these hex digits (dashes optional): how a person's short id is
    # found, served by the primary key as a range.
    id_prefix: str | None = param(
        fields.String(validate=validate.Regexp(r"^[0-9a-fA-F-]{1,36}$", error="must be hex digits of a run id"))
    )


# What an export streams: CSV with a header, or one JSON object a line.
EXPORT_FORMATS = ("csv", "jsonl")


def _format() -> fields.String:
    return fields.String(validate=validate.OneOf(EXPORT_FORMATS))


@dataclass(kw_only=True)
class RunExportQuery(RunQuery):
    """`GET /api/v1/runs/export`: every run `/runs` would page through, in one stream."""

    format: str = param(_format(), default="csv")


@dataclass(kw_only=True)
class StepExportQuery(StepQuery):
    """`GET /api/v1/steps/export`: every step `/steps` would page through, in one stream."""

    format: str = param(_format(), default="csv")


@dataclass(kw_only=True)
class StepStatsQuery(Window):
    """`GET /api/v1/steps/stats` and `/steps/reasons`: per pipeline and step name over a window
    (`since` defaults to seven days ago)."""

    pipeline: str | None = param(_name())
    name: str | None = param(_name())
    step_type: list[str] = param(_step_types(), default_factory=list)


@dataclass(kw_only=True)
class PatternQuery(Window, StepFilters):
    """`GET /api/v1/patterns`: what the bad runs of a pipeline over a window (default: the last
    7 days) have in common. A run is bad when it matches every given part of the predicate: a
    step matching the step filters, the run's status, a label."""

    pipeline: str = param(_name(), required=True)
    run_status: str | None = param(fields.String(validate=validate.OneOf(RUN_STATUSES)))
    # Bad runs finished with these outcome values (`correct:false`): a wrong answer, not an error.
    outcome: list[tuple[str, str]] = param(_json_filters(), default_factory=list)
    label: str | None = param(_label())
    # A judgement that is a number: bad runs carry a value below this.
    value_below: float | None = param(fields.Float(allow_nan=False))
    # The good runs, when not every other run is: those carrying this label (or, with
    # `value_below`, a value at or above it). The runs neither bad nor good are left out as unjudged.
    good_label: str | None = param(_label())
    min_support: float = param(fields.Float(allow_nan=False, validate=validate.Range(min=0.01, max=1.0)), default=0.2)
    limit: int = param(fields.Integer(validate=validate.Range(min=1, max=100)), default=10)


@dataclass(kw_only=True)
class ExplainQuery:
    """`GET /api/v1/runs/<run_id>/explain`: how many of the pipeline's runs that started before the
    one explained the baseline holds."""

    baseline_runs: int = param(fields.Integer(validate=validate.Range(min=20, max=2000)), default=DEFAULT_BASELINE_RUNS)


@dataclass(kw_only=True)
class WhyDroppedQuery:
    """`GET /api/v1/runs/<run_id>/why-dropped`: the candidate's id, as the step recorded it."""

    candidate: str = param(Text(validate=validate.Length(min=1, max=L.max_name_chars)), required=True)


StepQuerySchema = schema_for(StepQuery)
RunQuerySchema = schema_for(RunQuery)
StepExportQuerySchema = schema_for(StepExportQuery)
RunExportQuerySchema = schema_for(RunExportQuery)
StepStatsQuerySchema = schema_for(StepStatsQuery)
ExplainQuerySchema = schema_for(ExplainQuery)
PatternQuerySchema = schema_for(PatternQuery)
WhyDroppedQuerySchema = schema_for(WhyDroppedQuery)

# Given several times, these are ANDed (tags) or ORed (step types); any other parameter is given once.
REPEATABLE_PARAMETERS = frozenset({"step_type", "tag", "outcome", "metadata"})

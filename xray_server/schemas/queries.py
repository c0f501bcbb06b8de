"""Query-string parameters of the read endpoints. Unknown parameters are refused, so a
typo such as `min_drop=0.9` is an error rather than a silently unfiltered answer."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.contract.vocabulary import RUN_STATUSES, STEP_STATUSES, STEP_TYPES

from xray_server.schemas.fields import Text, TimeBound

L = DEFAULT_LIMITS
_ratio = validate.Range(min=0.0, max=1.0)


class PageSchema(Schema):
    """Keyset pagination: `limit` rows, then follow `next_cursor`."""

    limit = fields.Integer(load_default=L.default_page_size, validate=validate.Range(min=1, max=L.max_page_size))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))
    since = TimeBound(load_default=None)
    until = TimeBound(load_default=None)


class StepQuerySchema(PageSchema):
    """`GET /api/v1/steps`: steps across runs, newest first."""

    step_type = fields.List(fields.String(validate=validate.OneOf(STEP_TYPES)), load_default=list)
    pipeline = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    name = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    status = fields.String(load_default=None, validate=validate.OneOf(STEP_STATUSES))
    min_drop_ratio = fields.Float(load_default=None, allow_nan=False, validate=_ratio)
    max_drop_ratio = fields.Float(load_default=None, allow_nan=False, validate=_ratio)
    violations = fields.Boolean(load_default=None)
    reason = Text(load_default=None, validate=validate.Length(min=1, max=L.max_reason_chars))
    min_reason_share = fields.Float(load_default=None, allow_nan=False, validate=_ratio)


class RunQuerySchema(PageSchema):
    """`GET /api/v1/runs`: recent runs, newest first."""

    pipeline = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    entity = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


REPEATABLE_PARAMETERS = frozenset({"step_type"})


class StepStatsQuerySchema(Schema):
    """`GET /api/v1/steps/stats`: baselines per pipeline and step name over a time window."""

    pipeline = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    name = Text(load_default=None, validate=validate.Length(min=1, max=L.max_name_chars))
    step_type = fields.List(fields.String(validate=validate.OneOf(STEP_TYPES)), load_default=list)
    since = TimeBound(load_default=None)
    until = TimeBound(load_default=None)

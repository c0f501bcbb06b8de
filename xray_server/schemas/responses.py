"""Shapes of what the API answers: the one definition of each. The views are projected from
them (`query/views.py`), and the OpenAPI document is generated from them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class RunCreatedSchema(Schema):
    run_id = fields.UUID(required=True)


class RejectedEventSchema(Schema):
    index = fields.Integer(required=True)
    event_id = fields.String(allow_none=True)
    errors = fields.Dict(required=True)


class ViolationSchema(Schema):
    index = fields.Integer(required=True)
    event_id = fields.String(required=True)
    step_id = fields.String(required=True)
    violations = fields.List(fields.String(), required=True)


class TruncationSchema(Schema):
    index = fields.Integer(required=True)
    event_id = fields.String(required=True)
    fields_ = fields.List(fields.String(), required=True, data_key="fields")


class ArtifactOutcomeSchema(Schema):
    index = fields.Integer(required=True)
    name = fields.String(required=True)
    artifact_id = fields.UUID(required=True)
    status = fields.String(required=True)
    drop_reason = fields.String(allow_none=True)


class BatchResultSchema(Schema):
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RejectedEventSchema), required=True)
    contract_violations = fields.List(fields.Nested(ViolationSchema), required=True)
    truncated = fields.List(fields.Nested(TruncationSchema), required=True)
    artifacts = fields.List(fields.Nested(ArtifactOutcomeSchema), required=True)


# Why an item of a multi-run batch was refused.
REFUSAL_CODES = ("validation_error", "conflict", "run_outside_partitions")


class RefusedItemSchema(Schema):
    """An item of `POST /api/v1/batch` that was not applied: its index in its list, its run (when
    it named one), and why: `code` is `validation_error` (the fields in `errors`), `conflict` (a
    creation whose id names another run) or `run_outside_partitions` (its run is dated a day X-Ray
    keeps no partition for); `errors` names the field. The batch's other items were applied."""

    index = fields.Integer(required=True)
    run_id = fields.String(allow_none=True)
    code = fields.String(required=True, validate=validate.OneOf(REFUSAL_CODES))
    errors = fields.Dict(required=True)


class RefusedEventSchema(RefusedItemSchema):
    event_id = fields.String(allow_none=True)


class RunsOutcomeSchema(Schema):
    """The batch's run creations: new or completed (an implicit run filled in), already there
    with the same values, or refused."""

    created = fields.Integer(required=True)
    existing = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RefusedItemSchema), required=True)


class EventsOutcomeSchema(BatchResultSchema):
    """The batch's events, as `POST /api/v1/runs/<run_id>/events` answers them; each refused
    one also names its run and why."""

    rejected = fields.List(fields.Nested(RefusedEventSchema), required=True)


class LabelsOutcomeSchema(Schema):
    recorded = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RefusedItemSchema), required=True)


class RunsBatchResultSchema(Schema):
    """The answer of `POST /api/v1/batch`: 200, or 207 when any item was refused."""

    runs = fields.Nested(RunsOutcomeSchema, required=True)
    events = fields.Nested(EventsOutcomeSchema, required=True)
    labels = fields.Nested(LabelsOutcomeSchema, required=True)


class ArtifactViewSchema(Schema):
    artifact_id = fields.UUID(required=True)
    name = fields.String(required=True)
    capture = fields.String(required=True)
    content_type = fields.String(allow_none=True)
    status = fields.String(required=True)
    drop_reason = fields.String(allow_none=True)
    store_key = fields.String(allow_none=True)
    size_bytes = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    link = fields.String(allow_none=True)


class StepBaseSchema(Schema):
    run_id = fields.UUID(required=True)
    step_id = fields.UUID(required=True)
    parent_step_id = fields.UUID(allow_none=True)
    seq = fields.Integer(required=True)
    name = fields.String(required=True)
    step_type = fields.String(required=True)
    status = fields.String(required=True)
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    metrics = fields.Dict(required=True)
    why = fields.String(allow_none=True)
    error = fields.Dict(allow_none=True)
    contract_violations = fields.List(fields.String(), required=True)
    rejections = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class StepRowSchema(StepBaseSchema):
    """A step of the cross-run query, with its run's pipeline and entity."""

    pipeline = fields.String(allow_none=True)
    entity = fields.String(allow_none=True)


class StepDetailSchema(StepBaseSchema):
    """A step of the run view: everything the hot tier holds."""

    input = fields.Raw(allow_none=True)
    output = fields.Raw(allow_none=True)
    artifacts = fields.List(fields.Nested(ArtifactViewSchema), required=True)


class TotalSchema(Schema):
    """With `total=true`: every row of the query, exact up to 10,000 (`total_is_exact` false past it)."""

    total = fields.Integer(allow_none=True)
    total_is_exact = fields.Boolean(allow_none=True)


class StepPageSchema(TotalSchema):
    steps = fields.List(fields.Nested(StepRowSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class LabelViewSchema(Schema):
    source = fields.String(required=True)
    label = fields.String(required=True)
    value = fields.Float(allow_none=True)
    comment = fields.String(allow_none=True)
    labeled_at = fields.DateTime(required=True)


class RunSummarySchema(Schema):
    run_id = fields.UUID(required=True)
    pipeline = fields.String(allow_none=True)
    entity = fields.String(allow_none=True)
    tags = fields.Dict(required=True)
    metadata = fields.Raw(allow_none=True)
    status = fields.String(required=True)
    outcome = fields.Raw(allow_none=True)
    error = fields.Dict(allow_none=True)
    implicit = fields.Boolean(required=True)
    started_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    # Its judgements, latest first (`xray runs` shows them beside the run).
    labels = fields.List(fields.Nested(LabelViewSchema), required=True)


class RunStatsSchema(Schema):
    steps = fields.Integer(required=True)
    errors = fields.Integer(required=True)
    running = fields.Integer(required=True)
    contract_violations = fields.Integer(required=True)


class EvidenceSchema(Schema):
    stored = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    dropped = fields.Integer(required=True)
    referenced = fields.Integer(required=True)


class LabelRecordedSchema(LabelViewSchema):
    run_id = fields.UUID(required=True)
    run_known = fields.Boolean(required=True)


class LabelsRecordedSchema(Schema):
    recorded = fields.Integer(required=True)
    refused = fields.Integer(required=True)
    # Each refused judgement: its index in `labels`, and the fields that were wrong.
    errors = fields.List(fields.Dict(), required=True)


class RunViewSchema(RunSummarySchema):
    steps = fields.List(fields.Nested(StepDetailSchema), required=True)
    summary = fields.Nested(RunStatsSchema, required=True)
    evidence = fields.Nested(EvidenceSchema, required=True)
    degraded = fields.Boolean(required=True)


class RunPageSchema(TotalSchema):
    runs = fields.List(fields.Nested(RunSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True)


class StatusSchema(Schema):
    status = fields.String(required=True)


class QuantilesSchema(Schema):
    p10 = fields.Float(required=True)
    p50 = fields.Float(required=True)
    p90 = fields.Float(required=True)
    p99 = fields.Float(required=True)


class StepStatsGroupSchema(Schema):
    pipeline = fields.String(allow_none=True)
    name = fields.String(required=True)
    step_type = fields.String(required=True)
    steps = fields.Integer(required=True)
    runs = fields.Integer(required=True)
    errors = fields.Integer(required=True)
    running = fields.Integer(required=True)
    violations = fields.Integer(required=True)
    drop_ratio = fields.Nested(QuantilesSchema, allow_none=True)
    candidates_in = fields.Nested(QuantilesSchema, allow_none=True)
    candidates_out = fields.Nested(QuantilesSchema, allow_none=True)
    duration_ms = fields.Nested(QuantilesSchema, allow_none=True)


class ReasonSchema(Schema):
    reason = fields.String(required=True)
    steps = fields.Integer(required=True)
    total = fields.Integer(required=True)
    median_share = fields.Float(allow_none=True)


class ReasonsSchema(Schema):
    since = fields.DateTime(required=True)
    until = fields.DateTime(allow_none=True)
    steps = fields.Integer(required=True)
    reasons = fields.List(fields.Nested(ReasonSchema), required=True)


class StepStatsSchema(Schema):
    since = fields.DateTime(required=True)
    until = fields.DateTime(allow_none=True)
    groups = fields.List(fields.Nested(StepStatsGroupSchema), required=True)


class FindingSchema(Schema):
    kind = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["cause", "effect", "unusual"]))
    strength = fields.String(required=True, validate=validate.OneOf(["strong", "weak"]))
    score = fields.Float(required=True)
    step = fields.String(required=True)
    seq = fields.Integer(required=True)
    step_type = fields.String(required=True)
    message = fields.String(required=True)
    why = fields.String(allow_none=True)
    evidence = fields.Dict(required=True)


class CauseSchema(Schema):
    step = fields.String(required=True)
    seq = fields.Integer(required=True)
    step_type = fields.String(required=True)
    kind = fields.String(required=True)
    message = fields.String(required=True)
    evidence = fields.Dict(required=True)


class SymptomSchema(Schema):
    step = fields.String(required=True)
    seq = fields.Integer(required=True)
    step_type = fields.String(required=True)
    kind = fields.String(
        required=True, validate=validate.OneOf(["error", "empty", "worse_end", "missing_metrics", "slow"])
    )
    message = fields.String(required=True)


class ExplainSchema(Schema):
    run_id = fields.UUID(required=True)
    symptom = fields.Nested(SymptomSchema, allow_none=True, required=True)
    cause = fields.Nested(CauseSchema, allow_none=True, required=True)
    baseline = fields.Dict(required=True)
    pipeline = fields.String(allow_none=True)
    entity = fields.String(allow_none=True)
    status = fields.String(required=True)
    outcome = fields.Raw(allow_none=True)
    error = fields.Dict(allow_none=True)
    findings = fields.List(fields.Nested(FindingSchema), required=True)
    verdict = fields.String(required=True)


class DiffSchema(Schema):
    a = fields.Dict(required=True)
    b = fields.Dict(required=True)
    same_pipeline = fields.Boolean(required=True)
    # The runs' own differences: `entity`, `tags.<key>`, `metadata.<key>` -> [a's, b's].
    run = fields.Dict(required=True)
    outcome = fields.Raw(allow_none=True)
    steps = fields.List(fields.Dict(), required=True)


class WhyDroppedSchema(Schema):
    run_id = fields.UUID(required=True)
    candidate_id = fields.String(required=True)
    found = fields.Dict(allow_none=True)
    kept_by = fields.List(fields.String(), required=True)
    unknown_at = fields.List(fields.Dict(), required=True)
    lost_upstream = fields.Dict(allow_none=True)


class PatternSchema(Schema):
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    bad = fields.Integer(required=True)
    other = fields.Integer(required=True)
    support = fields.Float(required=True)
    precision = fields.Float(required=True)
    risk_ratio = fields.Float(allow_none=True)
    p_value = fields.Float(required=True)


class BucketSchema(Schema):
    start = fields.DateTime(required=True)
    runs = fields.Integer(required=True)
    bad = fields.Integer(required=True)
    bad_share = fields.Float()


class PatternTimelineSchema(Schema):
    attributes = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    first_bad = fields.DateTime(allow_none=True)
    last_good_before = fields.DateTime(allow_none=True)
    buckets = fields.List(fields.Nested(BucketSchema), required=True)


class TimelineSchema(Schema):
    first_bad = fields.DateTime(allow_none=True)
    last_bad = fields.DateTime(allow_none=True)
    bucket_seconds = fields.Integer(required=True)
    buckets = fields.List(fields.Nested(BucketSchema), required=True)
    pattern = fields.Nested(PatternTimelineSchema, allow_none=True)


class PatternsSchema(Schema):
    pipeline = fields.String(required=True)
    since = fields.DateTime(required=True)
    until = fields.DateTime(required=True)
    # The judged runs of the window (every run, unless good runs are defined), the bad among them,
    # and the runs left out as neither bad nor good.
    runs = fields.Integer(required=True)
    bad_runs = fields.Integer(required=True)
    unjudged = fields.Integer(required=True)
    good_runs_are = fields.String(required=True)
    tested = fields.Integer(required=True)
    patterns = fields.List(fields.Nested(PatternSchema), required=True)
    timeline = fields.Nested(TimelineSchema, required=True)

"""The events of `POST /api/v1/runs/<run_id>/events`. Each stands alone: a `step_end`
whose `step_start` was lost still describes a complete step."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.contract.vocabulary import (
    CAPTURE_LEVELS,
    EVENT_TYPES,
    FINAL_RUN_STATUSES,
    FINAL_STEP_STATUSES,
    STEP_TYPES,
    CaptureLevel,
    EventType,
)
from xray_server.schemas.fields import EventTime, JsonValue, Text
from xray_server.schemas.plain import NotPlain, PlainLoader

L = DEFAULT_LIMITS


class EventList(fields.List):
    """A JSON array of events, taken as it is: each event is validated on its own afterwards,
    so that a bad one is rejected alone, not with its batch (a null event included). Checking
    only the array here saves marshmallow a pass over every item (about 3 µs an event)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Raw(allow_none=True), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


class BatchSchema(Schema):
    """The envelope: a list of events, each validated on its own afterwards."""

    events = EventList(required=True, validate=validate.Length(min=1, max=L.max_events_per_batch))


class ErrorInfoSchema(Schema):
    """What went wrong in a step or a run: the exception's type, message and stack."""

    type = Text(required=True, validate=validate.Length(min=1, max=L.max_name_chars))
    message = Text(load_default="")
    stack = Text(load_default=None)


class ObjectRefSchema(Schema):
    """An object the client already put in the artifact store."""

    key = Text(required=True, validate=validate.Length(min=1, max=1024))
    size_bytes = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0, max=2**63 - 1))
    sha256 = fields.String(load_default=None, validate=validate.Regexp(r"[0-9a-f]{64}\Z"))


class ArtifactSchema(Schema):
    """Bulky evidence attached to a step: a payload, a reference, or a note that it was dropped."""

    name = Text(required=True, validate=validate.Length(min=1, max=L.max_name_chars))
    capture = fields.String(load_default=CaptureLevel.SUMMARY.value, validate=validate.OneOf(CAPTURE_LEVELS))
    content_type = Text(load_default=None, validate=validate.Length(max=L.max_name_chars))
    payload = JsonValue(load_default=None)
    ref = fields.Nested(ObjectRefSchema, load_default=None)
    dropped = Text(load_default=None, validate=validate.Length(min=1, max=64))

    @validates_schema
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [key for key in ("payload", "ref", "dropped") if data.get(key) is not None]
        if len(given) != 1:
            raise ValidationError(
                "give exactly one of payload, ref or dropped (the reason it was dropped)", "_artifact"
            )


class EventSchema(Schema):
    """What every event carries."""

    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    ts = EventTime(required=True)


class StepEventSchema(EventSchema):
    """What every step event carries, so that each one identifies its step completely."""

    step_id = fields.UUID(required=True)
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=L.max_seq))
    name = Text(required=True, validate=validate.Length(min=1, max=L.max_name_chars))
    step_type = fields.String(required=True, validate=validate.OneOf(STEP_TYPES))
    parent_step_id = fields.UUID(load_default=None)
    # The type the caller gave when it was none of the fixed ones (the step is sent as `custom`):
    # recorded as the contract violation `unknown_step_type:<declared_type>`.
    declared_type = Text(load_default=None, validate=validate.Length(min=1, max=L.max_declared_type_chars))


class StepStartSchema(StepEventSchema):
    """A step began; `input` is a summary of what it was given."""

    input = JsonValue(load_default=None)


class StepEndSchema(StepEventSchema):
    """A step ended: its status, output summary, metrics, `why`, error and artifacts."""

    status = fields.String(required=True, validate=validate.OneOf(FINAL_STEP_STATUSES))
    started_at = EventTime(load_default=None)
    # Used when no step_start brought one (it was lost, or the input was known only later).
    input = JsonValue(load_default=None)
    output = JsonValue(load_default=None)
    # Checked by xray_sdk.contract.evaluate_metrics, the rule the SDK applies too.
    metrics = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    why = Text(load_default=None)
    error = fields.Nested(ErrorInfoSchema, load_default=None)
    # Candidates removed, by reason; checked by xray_sdk.contract.check_rejections.
    rejections = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=None)
    artifacts = fields.List(
        fields.Nested(ArtifactSchema),
        load_default=list,
        validate=validate.Length(max=L.max_artifacts_per_step),
    )

    @validates_schema
    def _unique_artifact_names(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [artifact["name"] for artifact in data.get("artifacts") or ()]
        if len(names) != len(set(names)):
            raise ValidationError("artifact names must be unique within a step", "artifacts")


class RunFinishSchema(EventSchema):
    """The run ended, with an outcome or an error."""

    status = fields.String(required=True, validate=validate.OneOf(FINAL_RUN_STATUSES))
    outcome = JsonValue(load_default=None)
    error = fields.Nested(ErrorInfoSchema, load_default=None)


EVENT_SCHEMAS: dict[str, Schema] = {
    EventType.STEP_START.value: StepStartSchema(),
    EventType.STEP_END.value: StepEndSchema(),
    EventType.RUN_FINISH.value: RunFinishSchema(),
}
_PLAIN_LOADERS = {event_type: PlainLoader(schema) for event_type, schema in EVENT_SCHEMAS.items()}


def load_event(raw: Any) -> dict[str, Any]:
    """Validate one event; raise `ValidationError` with messages per field."""
    if not isinstance(raw, dict):
        raise ValidationError({"_event": ["each event must be a JSON object"]})
    event_type = raw.get("type")
    schema = EVENT_SCHEMAS.get(event_type) if isinstance(event_type, str) else None
    if schema is None:
        raise ValidationError({"type": [f"must be one of: {', '.join(EVENT_TYPES)}"]})
    try:
        return _PLAIN_LOADERS[event_type].load(raw)
    except NotPlain:
        return schema.load(raw)  # the result, or every field's error

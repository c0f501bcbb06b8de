"""The body of `POST /api/v1/runs`."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.schemas.fields import EventTime, JsonValue, Tags, Text

L = DEFAULT_LIMITS


class RunCreateSchema(Schema):
    """One execution of one pipeline on one entity. `run_id` may be chosen by the client."""

    run_id = fields.UUID(load_default=None)
    pipeline = Text(required=True, validate=validate.Length(min=1, max=L.max_name_chars))
    entity = Text(required=True, validate=validate.Length(min=1, max=L.max_name_chars))
    tags = Tags(load_default=dict)
    metadata = JsonValue(load_default=None)
    started_at = EventTime(load_default=None)

"""The body of `POST /api/v1/runs/<run_id>/labels`: a judgement about a run that arrives after it."""

from __future__ import annotations

from marshmallow import Schema, validate

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.schemas.fields import EventTime, Text

L = DEFAULT_LIMITS


class LabelSchema(Schema):
    """`label` such as `bad` or `good`; `source` says who judged (a reviewer, a check); the latest
    judgement of each source wins, by `at` (default: when the server received it)."""

    label = Text(required=True, validate=validate.Length(min=1, max=L.max_reason_chars))
    source = Text(load_default="", validate=validate.Length(max=L.max_name_chars))
    comment = Text(load_default=None, validate=validate.Length(max=L.max_why_chars))
    at = EventTime(load_default=None)

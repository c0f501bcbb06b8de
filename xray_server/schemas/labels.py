"""The bodies of `POST /api/v1/runs/<run_id>/labels` and `POST /api/v1/labels`: judgements about runs
that arrive after them, one run or many."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

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
    # A judgement that is a number: a reviewer's 1 to 5, a judge's 0.3, a click (1) or none (0).
    value = fields.Float(load_default=None, allow_nan=False)


class RunLabelSchema(LabelSchema):
    """One judgement of `POST /api/v1/labels`: the run it is about, and the judgement."""

    run_id = fields.UUID(required=True)


class LabelBatchSchema(Schema):
    """`POST /api/v1/labels`: up to `max_events_per_batch` judgements, each checked on its own."""

    labels = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=L.max_events_per_batch))

"""The body of `POST /api/v1/batch`: the run creations, events and labels of many runs in one
request. Each item is the body an existing endpoint takes, with the run it belongs to named in
it (`run_id`), and each is validated on its own afterwards, so that a bad one is refused alone."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.schemas.events import EventList, RunFinishSchema, StepEndSchema, StepStartSchema
from xray_server.schemas.runs import RunCreateSchema

L = DEFAULT_LIMITS


class BatchRunSchema(RunCreateSchema):
    """A run creation inside a batch: as `POST /api/v1/runs` takes it, but its id is the client's,
    so that the batch's events can name it."""

    run_id = fields.UUID(required=True)


class BatchStepStartSchema(StepStartSchema):
    """A step_start inside a batch, naming its run (validated as a step_start once it is taken out)."""

    run_id = fields.UUID(required=True)


class BatchStepEndSchema(StepEndSchema):
    """A step_end inside a batch, naming its run."""

    run_id = fields.UUID(required=True)


class BatchRunFinishSchema(RunFinishSchema):
    """A run_finish inside a batch, naming its run."""

    run_id = fields.UUID(required=True)


class RunsBatchSchema(Schema):
    """The envelope: three lists of items, at least one item and at most `max_events_per_batch`
    in all (the bound of one events batch, whatever mix of runs, events and labels it holds)."""

    runs = EventList(load_default=list)
    events = EventList(load_default=list)
    labels = EventList(load_default=list)

    @validates_schema
    def _bounded(self, data: dict[str, Any], **kwargs: Any) -> None:
        sizes = {key: len(data.get(key, ())) for key in ("runs", "events", "labels")}
        items = sum(sizes.values())
        if items == 0:
            raise ValidationError("send at least one item in runs, events or labels", "body")
        if items > L.max_events_per_batch:
            # Named by its longest list: the one to send less of.
            raise ValidationError(
                f"a batch holds at most {L.max_events_per_batch} items (runs, events and labels together);"
                f" this one holds {items}: send fewer per request",
                max(sizes, key=sizes.__getitem__),
            )

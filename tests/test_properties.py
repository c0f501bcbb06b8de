"""Property: any reordering, duplication or splitting into batches of a valid run's events
yields the same final state (hypothesis against real PostgreSQL)."""

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import competitor_run, step_end, step_start, ts
from tests.support.state import snapshot
from xray_server import ingest

EVENTS = competitor_run(drop_ratio_bad=True) + [
    # a step whose start carried input and whose end did not, and a step that never ended
    step_start("5b5b5b5b-0000-4000-8000-000000000001", 7, "late_audit", "custom", at=ts(-30), input={"x": 1}),
    step_end("5b5b5b5b-0000-4000-8000-000000000001", 7, "late_audit", "custom", at=ts(-29)),
    step_start("5b5b5b5b-0000-4000-8000-000000000002", 8, "never_ended", "custom", at=ts(-28)),
]


def comparable(state):
    run = {k: v for k, v in state["run"].items() if k != "run_id"}
    steps = sorted(({k: v for k, v in s.items() if k != "run_id"} for s in state["steps"]), key=lambda s: s["seq"])
    return run, steps


def deliver(db, run_id, order, duplicates, cuts):
    events = [EVENTS[i] for i in order] + [EVENTS[i] for i in duplicates]
    bounds = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        if end > start:
            ingest.ingest_events(db, run_id, {"events": events[start:end]})


_reference = {}


def reference(db):
    if "state" not in _reference:
        run_id = str(uuid.uuid4())
        ingest.ingest_events(db, run_id, {"events": EVENTS})
        _reference["state"] = comparable(snapshot(db, run_id))
    return _reference["state"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(len(EVENTS))),
    duplicates=st.lists(st.integers(0, len(EVENTS) - 1), max_size=6),
    cuts=st.lists(st.integers(0, 40), max_size=5),
)
def test_any_delivery_of_a_runs_events_gives_the_same_state(db, order, duplicates, cuts):
    run_id = str(uuid.uuid4())
    deliver(db, run_id, order, duplicates, cuts)
    assert comparable(snapshot(db, run_id)) == reference(db)

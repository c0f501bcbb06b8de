"""The merge is order-free even for odd deliveries: two starts and two ends of one step,
with inputs and artifacts on each, in every order, one batch or one event per batch."""

import itertools
import uuid

import pytest

from tests.support.events import new_id, step_end, step_start, ts
from tests.support.state import snapshot
from xray_server import ingest


def odd_step_events():
    step_id = new_id()
    return [
        step_start(step_id, 0, "x", "filter", at=ts(-9), input={"from": "start1"}),
        step_start(step_id, 1, "y", "filter", at=ts(-8), input={"from": "start2"}),
        step_end(
            step_id,
            0,
            "x",
            "filter",
            at=ts(-5),
            input={"from": "end1"},
            metrics={"candidates_in": 10, "candidates_out": 5},
            artifacts=[{"name": "a", "ref": {"key": "old"}}, {"name": "b", "dropped": "load_shed"}],
        ),
        step_end(
            step_id,
            2,
            "z",
            "filter",
            at=ts(-1),
            metrics={"candidates_in": 10, "candidates_out": 1},
            artifacts=[{"name": "a", "ref": {"key": "new"}}],
        ),
    ]


def comparable(state):
    steps = [{k: v for k, v in s.items() if k not in ("run_id", "step_id")} for s in state["steps"]]
    artifacts = [
        {k: v for k, v in a.items() if k not in ("run_id", "artifact_id", "step_id")} for a in state["artifacts"]
    ]
    return steps, sorted(artifacts, key=lambda a: a["name"])


@pytest.mark.parametrize("one_event_per_batch", [False, True])
def test_every_order_of_odd_deliveries_gives_one_state(db, one_event_per_batch):
    events = odd_step_events()
    seen = set()
    states = []
    for order in itertools.permutations(range(len(events))):
        run_id = str(uuid.uuid4())
        batch = [events[i] for i in order]
        batches = [[e] for e in batch] if one_event_per_batch else [batch]
        for b in batches:
            ingest.ingest_events(db, run_id, {"events": b})
        state = comparable(snapshot(db, run_id))
        key = repr(state)
        if key not in seen:
            seen.add(key)
            states.append((order, state))
    assert len(states) == 1, states[:2]
    steps, artifacts = states[0][1]
    step = steps[0]
    assert (step["seq"], step["name"], step["candidates_out"]) == (2, "z", 1)  # the latest end
    assert step["input"] == {"from": "start1"}  # the earliest start's input beats any end's
    assert [(a["name"], a["store_key"]) for a in artifacts] == [("a", "new"), ("b", None)]


def test_with_only_starts_the_earliest_start_names_the_step(db):
    events = odd_step_events()[:2]
    for order in (events, events[::-1]):
        run_id = str(uuid.uuid4())
        for event in order:
            ingest.ingest_events(db, run_id, {"events": [event]})
        step = snapshot(db, run_id)["steps"][0]
        assert (step["name"], step["status"], step["input"]) == ("x", "running", {"from": "start1"})


def test_the_latest_end_with_an_input_supplies_it_when_no_start_did(db):
    step_id = new_id()
    older = step_end(step_id, 0, "s", "search", at=ts(-5), input={"from": "older"})
    newer = step_end(step_id, 0, "s", "search", at=ts(-1))
    for order in ((older, newer), (newer, older)):
        run_id = str(uuid.uuid4())
        for event in order:
            ingest.ingest_events(db, run_id, {"events": [event]})
        assert snapshot(db, run_id)["steps"][0]["input"] == {"from": "older"}

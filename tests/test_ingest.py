"""Ingest rules, exercised through the ingest module against real PostgreSQL (no Flask)."""

import random
import uuid

import pytest

from tests.support.events import competitor_run, new_id, run_finish, step_end, step_start, ts
from tests.support.state import snapshot
from xray_server import ingest, query
from xray_server.errors import Conflict, ValidationFailed


def create(db, pipeline, **extra):
    run_id, created = ingest.create_run(db, {"pipeline": pipeline, "entity": "B0PHONECASE", **extra})
    assert created
    return run_id


def test_a_complete_run_is_stored_in_step_order(db, pipeline):
    run_id = create(db, pipeline)
    result = ingest.ingest_events(db, run_id, {"events": competitor_run()})
    assert (result.accepted, result.duplicates, result.rejected) == (11, 0, [])
    view = query.get_run(db, run_id)
    assert [s["name"] for s in view["steps"]] == [
        "generate_keywords",
        "search_catalogue",
        "compat_filter",
        "rank_candidates",
        "select_best",
    ]
    assert view["status"] == "ok"
    assert view["outcome"] == {"competitor": "B0TEST"}
    filt = view["steps"][2]
    assert filt["metrics"] == {"candidates_in": 2000, "candidates_out": 640, "drop_ratio": pytest.approx(0.68)}
    assert filt["why"] == "kept same-category items"
    assert filt["input"] == {"seq": 2}


def test_replayed_batch_changes_nothing(db, pipeline):
    run_id = create(db, pipeline)
    events = competitor_run()
    ingest.ingest_events(db, run_id, {"events": events})
    before = snapshot(db, run_id)
    again = ingest.ingest_events(db, run_id, {"events": events})
    assert (again.accepted, again.duplicates) == (0, len(events))
    assert snapshot(db, run_id) == before


def test_any_order_and_batching_gives_the_same_final_state(db, pipeline):
    events = competitor_run(drop_ratio_bad=True)
    started = ts(-60)
    reference_run = create(db, pipeline, started_at=started)
    ingest.ingest_events(db, reference_run, {"events": events})
    expected = _comparable(snapshot(db, reference_run))
    rng = random.Random(7)
    for _ in range(3):
        shuffled = events[:]
        rng.shuffle(shuffled)
        shuffled += rng.sample(events, 4)  # and some delivered twice
        run_id = create(db, pipeline, started_at=started)
        cut = rng.randrange(1, len(shuffled))
        ingest.ingest_events(db, run_id, {"events": shuffled[:cut]})
        ingest.ingest_events(db, run_id, {"events": shuffled[cut:]})
        assert _comparable(snapshot(db, run_id)) == expected


def _comparable(state):
    """A run's state without its ids and the time the run row was created."""
    run = dict(state["run"])
    run.pop("run_id")
    steps = sorted(({k: v for k, v in s.items() if k != "run_id"} for s in state["steps"]), key=lambda s: s["seq"])
    return {"run": run, "steps": steps}


def test_step_end_without_its_start_still_makes_a_complete_step(db, pipeline):
    run_id = create(db, pipeline)
    step_id = new_id()
    ingest.ingest_events(
        db,
        run_id,
        {
            "events": [
                step_end(
                    step_id,
                    0,
                    "compat_filter",
                    "filter",
                    started_at=ts(-2),
                    metrics={"candidates_in": 10, "candidates_out": 1},
                    why="only one case fits",
                )
            ]
        },
    )
    step = query.get_run(db, run_id)["steps"][0]
    assert step["status"] == "ok"
    assert step["metrics"]["drop_ratio"] == pytest.approx(0.9)
    assert step["duration_ms"] == pytest.approx(2000, abs=5)


def test_a_start_alone_is_a_running_step(db, pipeline):
    run_id = create(db, pipeline)
    ingest.ingest_events(db, run_id, {"events": [step_start(new_id(), 0, "generate_keywords", "llm", input={"q": 1})]})
    step = query.get_run(db, run_id)["steps"][0]
    assert step["status"] == "running"
    assert step["input"] == {"q": 1}


def test_events_for_an_unknown_run_create_it_implicitly_and_create_fills_it_in(db, pipeline):
    run_id = str(uuid.uuid4())
    ingest.ingest_events(db, run_id, {"events": competitor_run()})
    view = query.get_run(db, run_id)
    assert view["implicit"] is True and view["pipeline"] is None
    assert len(view["steps"]) == 5
    returned, created = ingest.create_run(db, {"run_id": run_id, "pipeline": pipeline, "entity": "B0X"})
    assert (returned, created) == (run_id, True)
    view = query.get_run(db, run_id)
    assert (view["implicit"], view["pipeline"], view["entity"]) == (False, pipeline, "B0X")
    assert len(view["steps"]) == 5


def test_the_same_create_twice_is_idempotent_and_a_different_one_conflicts(db, pipeline):
    body = {"run_id": str(uuid.uuid4()), "pipeline": pipeline, "entity": "B01", "tags": {"env": "test"}}
    assert ingest.create_run(db, body) == (body["run_id"], True)
    assert ingest.create_run(db, body) == (body["run_id"], False)
    with pytest.raises(Conflict) as info:
        ingest.create_run(db, {**body, "entity": "B02"})
    assert info.value.details["fields"] == ["entity"]


def test_invalid_events_are_reported_and_valid_ones_beside_them_are_kept(db, pipeline):
    run_id = create(db, pipeline)
    good = step_end(new_id(), 0, "rank_candidates", "rank", metrics={"candidates_in": 10, "candidates_out": 3})
    bad_type = step_end(new_id(), 1, "x", "classifier")
    bad_ratio = step_end(
        new_id(), 2, "f", "filter", metrics={"candidates_in": 10, "candidates_out": 3, "drop_ratio": 0.1}
    )
    not_an_object = 42
    result = ingest.ingest_events(db, run_id, {"events": [bad_type, good, not_an_object, bad_ratio]})
    assert result.accepted == 1
    assert result.http_status == 207
    assert [(r["index"], sorted(r["errors"])) for r in result.rejected] == [
        (0, ["step_type"]),
        (2, ["_event"]),
        (3, ["metrics.drop_ratio"]),
    ]
    assert result.rejected[0]["event_id"] == bad_type["event_id"]
    assert [s["name"] for s in query.get_run(db, run_id)["steps"]] == ["rank_candidates"]


def test_missing_required_metrics_are_stored_flagged_and_reported(db, pipeline):
    run_id = create(db, pipeline)
    step_id = new_id()
    result = ingest.ingest_events(
        db, run_id, {"events": [step_end(step_id, 0, "f", "filter", metrics={"candidates_in": 7})]}
    )
    assert result.http_status == 200
    assert result.contract_violations == [
        {
            "index": 0,
            "event_id": result.contract_violations[0]["event_id"],
            "step_id": step_id,
            "violations": ["missing_metric:candidates_out", "missing_metric:drop_ratio"],
        }
    ]
    step = query.get_run(db, run_id)["steps"][0]
    assert step["contract_violations"] == ["missing_metric:candidates_out", "missing_metric:drop_ratio"]
    flagged = query.find_steps(db, query.StepQuery(pipeline=pipeline, violations=True))["steps"]
    assert [s["step_id"] for s in flagged] == [step_id]


def test_over_long_why_and_summaries_are_truncated_visibly(db, pipeline):
    run_id = create(db, pipeline)
    event = step_end(new_id(), 0, "s", "search", why="w" * 10_000, output={"items": list(range(5000))})
    result = ingest.ingest_events(db, run_id, {"events": [event]})
    assert result.truncated == [{"index": 0, "event_id": event["event_id"], "fields": ["output", "why"]}]
    step = query.get_run(db, run_id)["steps"][0]
    assert len(step["why"]) <= 2000 and "truncated" in step["why"]
    assert step["output"]["_truncated"] is True


def test_the_latest_run_finish_wins_whatever_the_order(db, pipeline):
    early, late = (
        run_finish("error", at=ts(-5), error={"type": "Timeout", "message": "slow"}),
        run_finish("ok", at=ts(0)),
    )
    first, second = create(db, pipeline), create(db, pipeline)
    ingest.ingest_events(db, first, {"events": [early, late]})
    ingest.ingest_events(db, second, {"events": [late]})
    ingest.ingest_events(db, second, {"events": [early]})
    for run_id in (first, second):
        assert query.get_run(db, run_id)["status"] == "ok"


def test_artifact_references_are_kept_and_payloads_say_why_they_were_not(db, pipeline):
    run_id = create(db, pipeline)
    sha = "a" * 64
    event = step_end(
        new_id(),
        0,
        "f",
        "filter",
        metrics={"candidates_in": 2, "candidates_out": 1},
        artifacts=[
            {"name": "rejected_sample", "capture": "sample", "payload": [{"id": "B1"}]},
            {
                "name": "all_candidates",
                "capture": "full",
                "ref": {"key": "runs/x/all.json", "size_bytes": 10, "sha256": sha},
            },
            {"name": "prompt", "dropped": "load_shed"},
        ],
    )
    ingest.ingest_events(db, run_id, {"events": [event]})
    ingest.ingest_events(db, run_id, {"events": [event]})  # a replay adds no rows
    artifacts = {a["name"]: a for a in query.get_run(db, run_id)["steps"][0]["artifacts"]}
    assert len(artifacts) == 3
    assert (artifacts["rejected_sample"]["status"], artifacts["rejected_sample"]["drop_reason"]) == (
        "dropped",
        "no_store",
    )
    assert artifacts["all_candidates"]["status"] == "referenced"
    assert artifacts["all_candidates"]["store_key"] == "runs/x/all.json"
    assert (artifacts["prompt"]["status"], artifacts["prompt"]["drop_reason"]) == ("dropped", "load_shed")


def test_a_batch_with_many_events_of_one_step_is_applied(db, pipeline):
    run_id = create(db, pipeline)
    step_id = new_id()
    ends = [
        step_end(step_id, 0, "r", "rank", at=ts(i), metrics={"candidates_in": 10, "candidates_out": i})
        for i in range(4)
    ]
    ingest.ingest_events(db, run_id, {"events": [step_start(step_id, 0, "r", "rank", at=ts(-1)), *ends]})
    step = query.get_run(db, run_id)["steps"][0]
    assert step["metrics"]["candidates_out"] == 3  # the latest step_end wins


def test_a_malformed_envelope_or_run_id_is_a_validation_error(db):
    with pytest.raises(ValidationFailed) as info:
        ingest.ingest_events(db, str(uuid.uuid4()), {"events": []})
    assert "events" in info.value.details["fields"]
    with pytest.raises(ValidationFailed) as info:
        ingest.ingest_events(db, "not-a-uuid", {"events": competitor_run()})
    assert "run_id" in info.value.details["fields"]


def test_input_from_step_start_beats_step_end_in_any_order(db, pipeline):
    for order in ((0, 1), (1, 0)):
        run_id = create(db, pipeline)
        step_id = new_id()
        events = [
            step_start(step_id, 0, "f", "filter", at=ts(-1), input={"from": "start"}),
            step_end(
                step_id, 0, "f", "filter", input={"from": "end"}, metrics={"candidates_in": 1, "candidates_out": 1}
            ),
        ]
        for i in order:
            ingest.ingest_events(db, run_id, {"events": [events[i]]})
        assert query.get_run(db, run_id)["steps"][0]["input"] == {"from": "start"}


def test_input_known_only_at_the_end_is_kept(db, pipeline):
    run_id = create(db, pipeline)
    step_id = new_id()
    ingest.ingest_events(
        db,
        run_id,
        {
            "events": [
                step_start(step_id, 0, "s", "search", at=ts(-1)),
                step_end(step_id, 0, "s", "search", input={"query": "phone case"}),
            ]
        },
    )
    assert query.get_run(db, run_id)["steps"][0]["input"] == {"query": "phone case"}

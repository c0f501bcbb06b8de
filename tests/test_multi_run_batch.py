"""`POST /api/v1/batch`: the run creations, events and labels of many runs in one request, with the
guarantees of the endpoints it stands for. Over real gunicorn and HTTP where the wire matters, on
the ingest function where the database does; real PostgreSQL throughout."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.events import competitor_run, new_id, run_finish, step_end, step_start, ts
from tests.support.http import call
from tests.support.state import snapshot
from tests.test_api_runs import post_json
from tests.test_ingest import _comparable
from xray_sdk.contract.run_ids import with_day
from xray_sdk.ids import new_run_id
from xray_server import ingest, query


def of_run(run_id: str, events: list[dict]) -> list[dict]:
    """The events as a multi-run batch carries them: each naming its run."""
    return [{**event, "run_id": run_id} for event in events]


def creation(run_id: str, pipeline: str, entity: str = "B0CASE", **extra) -> dict:
    return {"run_id": run_id, "pipeline": pipeline, "entity": entity, **extra}


def post_batch(base_url: str, body: dict) -> tuple[int, dict]:
    return call(base_url, "POST", "/api/v1/batch", body, compress=True)


def state_without_ids(db, run_id: str) -> dict:
    return _comparable(snapshot(db, run_id))


def test_many_runs_in_one_request_are_stored_as_the_old_endpoints_store_them(xray_server, db, pipeline):
    base, started = xray_server.base_url, ts(-30)
    # Ids that carry their day, as the SDK's do, and one that does not (placed by a lookup).
    old_ids = [new_run_id() for _ in range(4)] + [str(uuid.uuid4())]
    new_ids = [new_run_id() for _ in range(4)] + [str(uuid.uuid4())]
    runs = [competitor_run(drop_ratio_bad=i % 2 == 1) for i in range(len(old_ids))]
    for run_id, events in zip(old_ids, runs, strict=True):
        assert call(base, "POST", "/api/v1/runs", creation(run_id, pipeline, started_at=started))[0] == 201
        assert call(base, "POST", f"/api/v1/runs/{run_id}/events", {"events": events})[0] == 200
    body = {
        "runs": [creation(run_id, pipeline, started_at=started) for run_id in new_ids],
        "events": [e for run_id, events in zip(new_ids, runs, strict=True) for e in of_run(run_id, events)],
    }
    status, answer = post_batch(base, body)
    assert status == 200, answer
    assert answer["runs"] == {"created": 5, "existing": 0, "rejected": []}
    assert (answer["events"]["accepted"], answer["events"]["duplicates"], answer["events"]["rejected"]) == (55, 0, [])
    assert answer["labels"] == {"recorded": 0, "rejected": []}
    for old, new in zip(old_ids, new_ids, strict=True):
        assert state_without_ids(db, new) == state_without_ids(db, old)
        assert len(snapshot(db, new)["steps"]) == 5


def test_replaying_a_batch_changes_nothing(xray_server, db, pipeline):
    run_ids = [new_run_id(), new_run_id(), str(uuid.uuid4())]
    body = {
        "runs": [creation(run_id, pipeline) for run_id in run_ids],
        "events": [e for run_id in run_ids for e in of_run(run_id, competitor_run())],
        "labels": [{"run_id": run_ids[0], "label": "bad", "source": "review", "at": ts(-1)}],
    }
    assert post_batch(xray_server.base_url, body)[0] == 200
    before = [snapshot(db, run_id) for run_id in run_ids]
    status, again = post_batch(xray_server.base_url, body)
    assert status == 200, again
    assert again["runs"] == {"created": 0, "existing": 3, "rejected": []}
    assert (again["events"]["accepted"], again["events"]["duplicates"]) == (0, 33)
    assert [snapshot(db, run_id) for run_id in run_ids] == before
    with db.connection() as conn:
        ledger = conn.execute(
            "SELECT count(*) AS n FROM ingested_events WHERE run_id = ANY(%s::uuid[])", (run_ids,)
        ).fetchone()
    assert ledger["n"] == 33  # each event once in the ledger


def test_the_events_of_a_step_in_any_order_give_one_final_row(db, pipeline):
    """Two starts and two ends of one step, with inputs and artifacts, in all 24 orders: one run
    per order, all in one batch, and again one event per batch; every final row is the same."""
    step_id = new_id()
    metrics = {"candidates_in": 10, "candidates_out": 4}
    fragments = [
        step_start(step_id, 1, "f", "filter", at=ts(-4), input={"from": "start-1"}),
        step_start(step_id, 1, "f", "filter", at=ts(-3), input={"from": "start-2"}),
        step_end(
            step_id,
            1,
            "f",
            "filter",
            at=ts(-2),
            metrics=metrics,
            why="first end",
            input={"from": "end-1"},
            artifacts=[{"name": "sample", "dropped": "load_shed"}],
        ),
        step_end(
            step_id,
            1,
            "f",
            "filter",
            at=ts(-1),
            metrics={**metrics, "candidates_out": 3},
            why="last end",
            artifacts=[{"name": "sample", "dropped": "capture_policy"}],
        ),
    ]
    orders = list(itertools.permutations(fragments))
    together = [new_run_id() for _ in orders]
    events = [e for run_id, order in zip(together, orders, strict=True) for e in of_run(run_id, list(order))]
    result = ingest.ingest_batch(db, {"events": events})
    assert (result.events.accepted, result.events.rejected) == (96, [])
    apart = [new_run_id() for _ in orders]
    for run_id, order in zip(apart, orders, strict=True):
        for event in order:
            ingest.ingest_batch(db, {"events": of_run(run_id, [event])})
    states = [_step_state(db, run_id) for run_id in together + apart]
    assert all(state == states[0] for state in states)
    assert (states[0]["why"], states[0]["input"], states[0]["candidates_out"]) == ("last end", {"from": "start-1"}, 3)
    assert states[0]["artifacts"] == [("sample", "dropped", "capture_policy")]


def _step_state(db, run_id: str) -> dict:
    [step] = query.get_run(db, run_id)["steps"]
    return {
        "why": step["why"],
        "input": step["input"],
        "candidates_out": step["metrics"]["candidates_out"],
        "started_at": step["started_at"],
        "ended_at": step["ended_at"],
        "artifacts": [(a["name"], a["status"], a["drop_reason"]) for a in step["artifacts"]],
    }


def test_any_order_and_any_split_of_many_runs_gives_the_same_final_state(db, pipeline):
    started = ts(-60)
    runs = {new_run_id(): competitor_run(drop_ratio_bad=i == 1) for i in range(3)}
    expected = {}
    for run_id, events in runs.items():
        ingest.create_run(db, creation(run_id, pipeline, started_at=started))
        ingest.ingest_events(db, run_id, {"events": events})
        expected[run_id] = state_without_ids(db, run_id)
    rng = random.Random(11)
    for _ in range(3):
        ids = {run_id: new_run_id() for run_id in runs}
        items = [e for run_id, events in runs.items() for e in of_run(ids[run_id], events)]
        items += rng.sample(items, 6)  # and some delivered twice
        rng.shuffle(items)
        cut = rng.randrange(1, len(items))
        creations = [creation(new, pipeline, started_at=started) for new in ids.values()]
        ingest.ingest_batch(db, {"events": items[:cut]})
        ingest.ingest_batch(db, {"runs": creations, "events": items[cut:]})
        for run_id, new in ids.items():
            assert state_without_ids(db, new) == expected[run_id]


def test_events_for_runs_never_created_land_and_a_later_creation_fills_them_in(xray_server, pipeline):
    base = xray_server.base_url
    run_ids = [new_run_id(), str(uuid.uuid4())]
    status, answer = post_batch(base, {"events": [e for r in run_ids for e in of_run(r, competitor_run())]})
    assert (status, answer["events"]["accepted"]) == (200, 22)
    for run_id in run_ids:
        view = call(base, "GET", f"/api/v1/runs/{run_id}")[1]
        assert (view["implicit"], view["pipeline"], len(view["steps"])) == (True, None, 5)
    status, answer = post_batch(base, {"runs": [creation(r, pipeline) for r in run_ids]})
    assert (status, answer["runs"]["created"]) == (200, 2)  # created: an implicit run completed
    for run_id in run_ids:
        view = call(base, "GET", f"/api/v1/runs/{run_id}")[1]
        assert (view["implicit"], view["pipeline"], len(view["steps"])) == (False, pipeline, 5)


def test_a_bad_item_is_refused_naming_its_field_and_its_valid_neighbours_are_stored(xray_server, db, pipeline):
    good, other = new_run_id(), new_run_id()
    ok_end = step_end(new_id(), 0, "rank", "rank", metrics={"candidates_in": 10, "candidates_out": 3})
    bad_ratio = step_end(
        new_id(), 1, "f", "filter", metrics={"candidates_in": 10, "candidates_out": 3, "drop_ratio": 0.1}
    )
    body = {
        "runs": [creation(good, pipeline), {"run_id": other, "entity": "e"}, "not a run", creation(other, pipeline)],
        "events": [
            {**step_end(new_id(), 0, "x", "classifier"), "run_id": good},
            {**ok_end, "run_id": good},
            {**step_end(new_id(), 0, "s", "search"), "run_id": "not-a-uuid"},
            step_end(new_id(), 0, "s", "search"),  # names no run
            42,
            {**bad_ratio, "run_id": other},
            {**run_finish(), "run_id": other},
        ],
        "labels": [{"run_id": good, "label": "bad"}, {"run_id": other, "label": ""}, {"label": "bad"}],
    }
    status, answer = post_batch(xray_server.base_url, body)
    assert status == 207, answer
    assert [(r["index"], r["code"], sorted(r["errors"])) for r in answer["runs"]["rejected"]] == [
        (1, "validation_error", ["pipeline"]),
        (2, "validation_error", ["body"]),
    ]
    assert (answer["runs"]["created"], answer["runs"]["existing"]) == (2, 0)
    assert [(r["index"], r["run_id"], sorted(r["errors"])) for r in answer["events"]["rejected"]] == [
        (0, good, ["step_type"]),
        (2, "not-a-uuid", ["run_id"]),
        (3, None, ["run_id"]),
        (4, None, ["_event"]),
        (5, other, ["metrics.drop_ratio"]),
    ]
    assert answer["events"]["rejected"][0]["event_id"] == body["events"][0]["event_id"]
    assert answer["events"]["accepted"] == 2
    assert [(r["index"], sorted(r["errors"])) for r in answer["labels"]["rejected"]] == [
        (1, ["label"]),
        (2, ["run_id"]),
    ]
    assert answer["labels"]["recorded"] == 1
    assert [s["name"] for s in query.get_run(db, good)["steps"]] == ["rank"]
    assert query.get_run(db, other)["status"] == "ok" and query.get_run(db, other)["pipeline"] == pipeline
    assert [label["label"] for label in query.get_run(db, good)["labels"]] == ["bad"]


def test_a_conflicting_creation_is_refused_alone(db, pipeline):
    run_id, fresh = new_run_id(), new_run_id()
    ingest.create_run(db, creation(run_id, pipeline, entity="B01"))
    result = ingest.ingest_batch(
        db,
        {
            "runs": [
                creation(run_id, pipeline, entity="B02"),
                creation(fresh, pipeline),
                creation(run_id, pipeline, entity="B01"),
            ],
            "events": of_run(run_id, competitor_run()),
        },
    )
    assert result.http_status == 207
    [refused] = result.runs_rejected
    assert (refused["index"], refused["code"], list(refused["errors"])) == (0, "conflict", ["entity"])
    assert (result.created, result.existing, result.events.accepted) == (1, 1, 11)
    assert query.get_run(db, run_id)["entity"] == "B01" and len(query.get_run(db, run_id)["steps"]) == 5


def test_labels_in_the_batch_are_recorded_with_the_runs_they_judge(xray_server, pipeline):
    base, run_id, later = xray_server.base_url, new_run_id(), str(uuid.uuid4())
    body = {
        "runs": [creation(run_id, pipeline)],
        "events": of_run(run_id, competitor_run()),
        "labels": [
            {"run_id": run_id, "label": "good", "source": "review", "at": ts(-10)},
            {"run_id": run_id, "label": "bad", "source": "review", "at": ts(-5), "comment": "a laptop stand"},
            {"run_id": run_id, "label": "judge", "source": "llm", "value": 0.3},
            {"run_id": later, "label": "bad"},  # a run not known yet: kept
        ],
    }
    status, answer = post_batch(base, body)
    assert (status, answer["labels"]) == (200, {"recorded": 4, "rejected": []})
    view = call(base, "GET", f"/api/v1/runs/{run_id}")[1]
    assert sorted((label["source"], label["label"]) for label in view["labels"]) == [
        ("llm", "judge"),
        ("review", "bad"),
    ]
    page = call(base, "GET", f"/api/v1/runs?label=bad&pipeline={pipeline}")[1]
    assert [run["run_id"] for run in page["runs"]] == [run_id]


def test_artifacts_are_written_after_the_commit_and_read_back(xray_server, db, pipeline):
    base = xray_server.base_url
    payloads = {
        run_id: [{"asin": f"B{i}", "run": run_id} for i in range(20)] for run_id in (new_run_id(), new_run_id())
    }
    events = [
        {
            **step_end(
                new_id(),
                0,
                "compat_filter",
                "filter",
                metrics={"candidates_in": 20, "candidates_out": 0},
                artifacts=[{"name": "rejected_sample", "capture": "sample", "payload": payload}],
            ),
            "run_id": run_id,
        }
        for run_id, payload in payloads.items()
    ]
    status, answer = post_batch(base, {"events": events})
    assert status == 200, answer
    assert [(a["index"], a["status"]) for a in answer["events"]["artifacts"]] == [(0, "stored"), (1, "stored")]
    for run_id, payload in payloads.items():
        [artifact] = call(base, "GET", f"/api/v1/runs/{run_id}")[1]["steps"][0]["artifacts"]
        assert artifact["status"] == "stored"
        assert call(base, "GET", f"/api/v1/artifacts/{artifact['artifact_id']}") == (200, payload)


def test_a_dead_store_costs_the_evidence_of_every_run_never_their_metrics(settings, db):
    from tests.test_artifacts import make_client

    client, _ = make_client(
        settings, db, s3_endpoint="127.0.0.1:9", s3_access_key="a", s3_secret_key="b", artifact_timeout=0.3
    )
    run_ids = [new_run_id(), new_run_id()]
    events = [
        {
            **step_end(
                new_id(),
                0,
                "f",
                "filter",
                metrics={"candidates_in": 10, "candidates_out": 5},
                artifacts=[{"name": "a", "payload": [1]}],
            ),
            "run_id": run_id,
        }
        for run_id in run_ids
    ]
    response = post_json(client, "/api/v1/batch", {"events": events})
    assert response.status_code == 200, response.get_json()
    outcomes = response.get_json()["events"]["artifacts"]
    assert {(a["status"], a["drop_reason"]) for a in outcomes} == {("dropped", "store_unavailable")}
    for run_id in run_ids:
        step = query.get_run(db, run_id)["steps"][0]
        assert step["metrics"]["drop_ratio"] == 0.5
        assert step["artifacts"][0]["drop_reason"] == "store_unavailable"  # recorded for each run's row


FAIL_AT_COMMIT = "fail-at-commit-{}"


def test_a_batch_whose_commit_fails_stores_nothing(db, pipeline):
    """A constraint checked at COMMIT refuses the batch's last statement (its labels): the runs
    and events before it, of every run, are gone with it."""
    label = FAIL_AT_COMMIT.format(uuid.uuid4().hex[:8])
    run_ids = [new_run_id(), new_run_id(), str(uuid.uuid4())]

    def body(judgement: str) -> dict:
        return {
            "runs": [creation(run_id, pipeline) for run_id in run_ids],
            "events": [e for run_id in run_ids for e in of_run(run_id, competitor_run())],
            "labels": [{"run_id": run_ids[0], "label": judgement}],
        }

    with db.connection() as conn:
        conn.execute(
            "CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.label = '{label}' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT OR UPDATE ON run_labels "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit()"
        )
    try:
        with pytest.raises(psycopg.errors.RaiseException):
            ingest.ingest_batch(db, body(label))
        with db.connection() as conn:
            for table in ("runs", "steps", "ingested_events", "run_labels"):
                found = conn.execute(
                    f"SELECT count(*) AS n FROM {table} WHERE run_id = ANY(%s::uuid[])", (run_ids,)
                ).fetchone()
                assert found["n"] == 0, table
        # The same batch with an ordinary label is stored whole: the commit alone refused the other.
        assert ingest.ingest_batch(db, body("bad")).events.accepted == 33
    finally:
        with db.connection() as conn:
            conn.execute("DROP TRIGGER fail_at_commit ON run_labels")
            conn.execute("DROP FUNCTION fail_at_commit()")


def test_a_run_dated_outside_the_partitions_refuses_its_own_items_not_the_batch(client, db, pipeline):
    ahead = str(with_day(uuid.uuid4(), datetime.now(UTC).date() + timedelta(days=40)))
    good = new_run_id()
    body = {
        "runs": [creation(ahead, pipeline), creation(good, pipeline)],
        "events": of_run(ahead, competitor_run()[:2]) + of_run(good, competitor_run()),
        "labels": [{"run_id": ahead, "label": "bad"}],
    }
    response = post_json(client, "/api/v1/batch", body)
    assert response.status_code == 207, response.get_json()
    answer = response.get_json()
    [run] = answer["runs"]["rejected"]
    assert (run["index"], run["run_id"], run["code"]) == (0, ahead, "run_outside_partitions")
    assert "clock" in run["errors"]["run_id"][0]
    assert [(r["index"], r["code"], list(r["errors"])) for r in answer["events"]["rejected"]] == [
        (0, "run_outside_partitions", ["run_id"]),
        (1, "run_outside_partitions", ["run_id"]),
    ]
    assert (answer["runs"]["created"], answer["events"]["accepted"], answer["labels"]["recorded"]) == (1, 11, 1)
    assert len(query.get_run(db, good)["steps"]) == 5
    with db.connection() as conn:
        ledger = conn.execute("SELECT count(*) AS n FROM ingested_events WHERE run_id = %s", (ahead,)).fetchone()
    assert ledger["n"] == 0


def test_the_batch_is_bounded_in_items_and_in_bytes(client):
    run_id = new_run_id()
    events = of_run(run_id, [step_end(new_id(), i, "s", "search") for i in range(600)])
    labels = [{"run_id": run_id, "label": "bad", "source": f"s{i}"} for i in range(401)]
    response = post_json(client, "/api/v1/batch", {"events": events, "labels": labels})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (
        list(error["details"]["fields"]) == ["events"]
        and "at most 1000 items" in error["details"]["fields"]["events"][0]
    )
    empty = post_json(client, "/api/v1/batch", {"runs": [], "events": []})
    assert (empty.status_code, list(empty.get_json()["error"]["details"]["fields"])) == (400, ["body"])
    huge = post_json(
        client, "/api/v1/batch", {"events": of_run(run_id, [step_end(new_id(), 0, "s", "search", why="w" * 6_000_000)])}
    )
    assert huge.status_code == 413
    assert huge.get_json()["error"]["details"] == {"limit_bytes": 5 * 1024 * 1024}


def test_a_batch_costs_the_same_statements_whatever_its_number_of_runs(db, settings, pipeline):
    """Applied set-wise: the creations in one statement, the events of every run in one more (each
    step once, as the SDK sends steps shorter than a second), whether it holds one run or forty."""
    from tests.test_round_trips import CountingDatabase

    def statements(runs: int) -> int:
        run_ids = [new_run_id() for _ in range(runs)]
        body = {
            "runs": [creation(run_id, pipeline) for run_id in run_ids],
            "events": [e for run_id in run_ids for e in of_run(run_id, competitor_run()) if e["type"] != "step_start"],
        }
        CountingDatabase.statements = 0
        result = ingest.ingest_batch(counting, body)
        assert (result.created, result.events.accepted) == (runs, runs * 6)
        return CountingDatabase.statements

    counting = CountingDatabase(settings.database_url, settings, open_wait=True)
    try:
        statements(1)  # the process learns once where the partitioned days begin
        assert statements(1) == statements(40) == 2
    finally:
        counting.close()


def test_a_creation_with_a_number_past_64_bits_is_stored_not_a_500(xray_server, pipeline):
    """The run rows travel as JSON with their start time: a metadata number orjson cannot write
    sent them to `json`, which could not write the time (found by schemathesis)."""
    run_id = new_run_id()
    status, answer = post_batch(
        xray_server.base_url, {"runs": [{**creation(run_id, pipeline), "metadata": {"n": 2**70}}]}
    )
    assert status == 200 and answer["runs"]["created"] == 1, answer

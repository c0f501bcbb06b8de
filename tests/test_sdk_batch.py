"""The SDK sends everything queued in one `POST /api/v1/batch` per flush, counts each item's answer
exactly, retries the batch whole, and falls back to each run's own requests on an older server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.support.clients import REAL_SERVER_TIMEOUT
from tests.support.http import call
from xray_sdk.contract.run_ids import with_day

# Nothing leaves before flush() wakes the delivery thread: what is queued goes in one request.
UNTIL_FLUSH = {"flush_interval": 30.0, "max_attempts": 1000}
BATCH = "/api/v1/batch"


def record_runs(client, runs: int = 3, steps: int = 2) -> list[str]:
    run_ids = []
    for r in range(runs):
        with client.start_run("batch_test", f"B{r}") as run:
            for i in range(steps):
                with run.step(f"filter_{i}", "filter") as step:
                    step.candidates(10, 5).why("kept half")
        run_ids.append(run.run_id)
    client.label(run_ids[0], "bad", source="review")
    return run_ids


def reconciles(stats) -> bool:
    return stats["enqueued"] == stats["sent"] + stats["dropped_total"] + stats["pending"]


def test_everything_queued_goes_in_one_request(server, sdk_client):
    client = sdk_client(server.url, **UNTIL_FLUSH)
    run_ids = record_runs(client)
    assert client.flush(5)
    assert server.paths == [BATCH]
    assert [r["run_id"] for r in server.runs] == run_ids
    assert len(server.events) == 3 * 3 and {e["run_id"] for e in server.events} == set(run_ids)
    assert [(label["run_id"], label["label"]) for label in server.labels] == [(run_ids[0], "bad")]
    stats = client.stats()
    assert (stats["sent"], stats["requests"], stats["dropped_total"], stats["pending"]) == (13, 1, 0, 0)


def test_a_batch_of_many_runs_is_bounded_by_the_item_bound(server, sdk_client):
    client = sdk_client(server.url, **UNTIL_FLUSH, batch_max_items=5)
    record_runs(client)  # 13 items
    assert client.flush(5)
    assert server.paths == [BATCH, BATCH, BATCH]
    assert client.stats()["sent"] == 13


def test_a_batch_never_holds_more_items_than_the_server_takes(server, sdk_client):
    """A setting above the server's 1,000 items a request would get the whole batch refused."""
    client = sdk_client(server.url, **UNTIL_FLUSH, batch_max_items=5000)
    record_runs(client, runs=1, steps=1499)  # 1,502 items
    assert client.flush(10)
    assert server.paths == [BATCH, BATCH]
    assert client.stats()["sent"] == 1502


def test_an_older_server_gets_each_runs_own_requests_and_nothing_is_lost(sdk_client):
    from tests.support.scripted_server import ScriptedServer

    older = ScriptedServer(batch=False).start()
    try:
        client = sdk_client(older.url, **UNTIL_FLUSH)
        run_ids = record_runs(client, runs=2)
        assert client.flush(5)
        creates = ["/api/v1/runs"] * 2
        events = [f"/api/v1/runs/{run_id}/events" for run_id in run_ids]
        assert older.paths == [BATCH, *creates, *events, f"/api/v1/runs/{run_ids[0]}/labels"]
        record_runs(client, runs=1)
        assert client.flush(5)
        assert BATCH not in older.paths[8:]  # asked once: the client remembers
        stats = client.stats()
        assert (stats["sent"], stats["dropped_total"], stats["retries"], stats["pending"]) == (9 + 5, 0, 0, 0)
        assert len(older.runs) == 3 + 2  # the scripted server counts a label's body with the runs
    finally:
        older.stop()


def test_a_failed_batch_is_retried_whole_and_delivered_once(server, sdk_client):
    client = sdk_client(server.url, **UNTIL_FLUSH)
    run_ids = record_runs(client)
    server.failing_events[run_ids[1]] = 2  # the batch holding its events fails twice (one transaction)
    assert client.flush(10)
    assert server.paths == [BATCH] * 3
    assert len(server.runs) == 3  # the two failed tries recorded nothing
    stats = client.stats()
    assert (stats["sent"], stats["retries"], stats["dropped_total"]) == (13, 2, 0)
    assert reconciles(stats)


def test_each_refused_item_is_counted_exactly_by_the_real_server(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, **UNTIL_FLUSH, timeout=REAL_SERVER_TIMEOUT)
    with client.start_run(pipeline, "B0KEPT") as kept:  # a create, a step, the finish: 3 sent
        kept.step("s", "search", lambda step: None)
    ahead = str(with_day(uuid.uuid4(), datetime.now(UTC).date() + timedelta(days=40)))
    with client.start_run(pipeline, "B0AHEAD", run_id=ahead) as outside:  # 3 refused: no partition
        outside.step("s", "search", lambda step: None)
    client.start_run(pipeline, "B0OTHER", run_id=kept.run_id)  # 1 refused: a conflicting create
    assert client.flush(10)
    stats = client.stats()
    assert (stats["sent"], stats["dropped"], stats["requests"]) == (3, {"rejected_by_server": 4}, 1)
    assert reconciles(stats)
    status, view = call(xray_server.base_url, "GET", f"/api/v1/runs/{kept.run_id}")
    assert (status, view["entity"], len(view["steps"])) == (200, "B0KEPT", 1)
    assert call(xray_server.base_url, "GET", f"/api/v1/runs/{ahead}")[0] == 404

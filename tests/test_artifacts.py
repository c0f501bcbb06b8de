"""The cold tier against a real S3 server (SeaweedFS) and the local folder store."""

import dataclasses
import hashlib
import json
import time
import uuid
from datetime import timedelta

import pytest

from tests.support.events import new_id, step_end, ts
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from tests.test_api_runs import assert_error, post_json
from xray_server import ingest, query
from xray_server.artifacts.retention import collect
from xray_server.artifacts.stores import BadKey, LocalDirStore
from xray_server.artifacts.sweep import resolve_stale_pending
from xray_server.artifacts.writer import ArtifactWriter
from xray_server.web.app import create_app

# Liveness bound for the slow store: the request's 300 ms artifact budget plus generous room;
# far below the 5 s the slow store holds each request.
WITHIN_BUDGET_SECONDS = 3.0


def make_client(settings, db, **overrides):
    app = create_app(dataclasses.replace(settings, **overrides), database=db)
    return app.test_client(), app


@pytest.fixture(params=["local", "s3"])
def store_client(request, settings, db, tmp_path, s3_server):
    if request.param == "local":
        client, app = make_client(settings, db, artifacts_dir=tmp_path / "artifacts")
    else:
        client, app = make_client(
            settings,
            db,
            s3_endpoint=s3_server.endpoint,
            s3_access_key="test",
            s3_secret_key="testtest",
            s3_bucket="xray-test",
        )
    return client, app


def filter_end(artifacts, **extra):
    return step_end(
        new_id(),
        0,
        "compat_filter",
        "filter",
        metrics={"candidates_in": 100, "candidates_out": 5},
        artifacts=artifacts,
        **extra,
    )


def send(client, events):
    run_id = str(uuid.uuid4())
    response = post_json(client, f"/api/v1/runs/{run_id}/events", {"events": events})
    assert response.status_code == 200, response.get_json()
    return run_id, response.get_json()


def test_round_trip_through_the_api(store_client):
    client, _ = store_client
    payload = [{"asin": f"B{i}", "category": "laptop_stand"} for i in range(50)]
    run_id, result = send(client, [filter_end([{"name": "rejected_sample", "capture": "sample", "payload": payload}])])
    assert [(a["name"], a["status"]) for a in result["artifacts"]] == [("rejected_sample", "stored")]
    view = client.get(f"/api/v1/runs/{run_id}").get_json()
    artifact = view["steps"][0]["artifacts"][0]
    assert artifact["status"] == "stored" and view["degraded"] is False
    body = client.get(artifact["link"])
    assert body.status_code == 200 and body.mimetype == "application/json"
    assert json.loads(body.data) == payload
    assert hashlib.sha256(body.data).hexdigest() == artifact["sha256"]
    assert artifact["size_bytes"] == len(body.data)


def test_a_store_that_is_down_costs_the_evidence_never_the_metrics(settings, db):
    client, _ = make_client(
        settings, db, s3_endpoint="127.0.0.1:9", s3_access_key="a", s3_secret_key="b", artifact_timeout=0.3
    )
    run_id, result = send(client, [filter_end([{"name": "a", "payload": [1]}, {"name": "b", "payload": [2]}])])
    assert {a["status"] for a in result["artifacts"]} == {"dropped"}
    assert {a["drop_reason"] for a in result["artifacts"]} == {"store_unavailable"}
    view = client.get(f"/api/v1/runs/{run_id}").get_json()
    assert view["degraded"] is True and view["evidence"]["stored"] == 0
    assert view["steps"][0]["metrics"]["drop_ratio"] == 0.95
    artifact_id = view["steps"][0]["artifacts"][0]["artifact_id"]
    response = client.get(f"/api/v1/artifacts/{artifact_id}")
    assert_error(response, 404, "artifact_dropped")
    assert response.get_json()["error"]["details"]["drop_reason"] == "store_unavailable"


def test_a_slow_store_does_not_hold_the_ingest_response(settings, db, s3_server):
    proxy = SlowProxy(s3_server.endpoint, delay=5.0).start()
    try:
        client, _ = make_client(
            settings,
            db,
            s3_endpoint=f"127.0.0.1:{proxy.port}",
            s3_access_key="test",
            s3_secret_key="testtest",
            artifact_timeout=2.0,
            artifact_budget_ms=300,
        )
        started = time.monotonic()
        run_id, result = send(client, [filter_end([{"name": f"a{i}", "payload": [i]} for i in range(5)])])
        assert time.monotonic() - started < WITHIN_BUDGET_SECONDS
        # Nothing claims `stored`: writes not started are shed, writes under way stay pending
        # until the sweep reads what the store holds.
        assert {a["status"] for a in result["artifacts"]} <= {"dropped", "pending"}
        assert client.get(f"/api/v1/runs/{run_id}").get_json()["steps"][0]["metrics"]["candidates_out"] == 5
    finally:
        proxy.stop()


def test_a_store_that_comes_back_is_used_again_without_a_restart(settings, db, s3_server):
    proxy = TcpProxy(tuple_of(s3_server.endpoint)).start()
    client, app = make_client(
        settings,
        db,
        s3_endpoint=f"127.0.0.1:{proxy.port}",
        s3_access_key="test",
        s3_secret_key="testtest",
        artifact_timeout=0.3,
        s3_bucket="xray-test",
    )
    writer = app.extensions["xray.writer"]
    writer.breaker.cooldown = 0.2
    proxy.cut()
    for _ in range(4):  # enough failures to open the breaker
        send(client, [filter_end([{"name": "a", "payload": [1]}])])
    _, result = send(client, [filter_end([{"name": "a", "payload": [1]}])])
    assert result["artifacts"][0]["drop_reason"] == "store_unavailable"
    proxy.restore()

    def stored_again():
        _, result = send(client, [filter_end([{"name": "a", "payload": [1]}])])
        return result["artifacts"][0]["status"] == "stored"

    wait_until(stored_again, timeout=10, interval=0.25, message="no artifact stored after the store came back")
    proxy.cut()


def test_oversized_payloads_and_capture_policy_are_dropped_with_their_reason(settings, db, tmp_path):
    client, _ = make_client(settings, db, artifacts_dir=tmp_path, max_capture="sample")
    big = "x" * (1024 * 1024 + 10)
    _, result = send(
        client,
        [
            filter_end(
                [
                    {"name": "big", "payload": big},
                    {"name": "everything", "capture": "full", "payload": [1]},
                    {"name": "client_shed", "dropped": "load_shed"},
                ]
            )
        ],
    )
    reasons = {a["name"]: a["drop_reason"] for a in result["artifacts"]}
    assert reasons == {"big": "too_large", "everything": "capture_policy", "client_shed": "load_shed"}


def test_hostile_names_never_reach_a_key_and_hostile_refs_are_refused(settings, db, tmp_path):
    root = tmp_path / "store"
    client, _ = make_client(settings, db, artifacts_dir=root)
    names = ["../../etc/passwd", "a/../../b", "..", "x" * 200, "nul\\u0000".replace("\\u0000", "")]
    run_id, result = send(
        client,
        [
            filter_end(
                [{"name": n, "payload": [n]} for n in names] + [{"name": "ref", "ref": {"key": "../../etc/passwd"}}]
            )
        ],
    )
    statuses = {a["name"]: (a["status"], a["drop_reason"]) for a in result["artifacts"]}
    assert all(statuses[n] == ("stored", None) for n in names)
    assert statuses["ref"] == ("dropped", "invalid_key")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(root in p.parents for p in files)


def test_the_local_store_refuses_keys_that_escape_it(tmp_path):
    store = LocalDirStore(tmp_path / "store")
    for key in ("../x", "/etc/passwd", "a/../../x", "a//b", "", "a\\b"):
        with pytest.raises(BadKey):
            store.put(key, b"x", "text/plain")
    store.put("runs/a/b.json", b"1", "application/json")
    assert store.exists("runs/a/b.json") and store.get("runs/a/b.json") == b"1"


def test_rows_a_crash_left_pending_are_settled_never_claimed(db, tmp_path):
    store = LocalDirStore(tmp_path)

    class CrashAfterCommit(ArtifactWriter):
        """A worker that dies after the commit: one object written, no row updated."""

        def settle(self, db, run_id, pending):
            self.store.put(pending[0].key, pending[0].data, pending[0].content_type)
            return []

    writer = CrashAfterCommit(store, budget_ms=300, budget_bytes=10**6, concurrency=1)
    run_id = str(uuid.uuid4())
    ingest.ingest_events(
        db,
        run_id,
        {"events": [filter_end([{"name": "written", "payload": [1]}, {"name": "never_written", "payload": [2]}])]},
        writer,
    )
    rows = {a["name"]: a["status"] for a in query.get_run(db, run_id)["steps"][0]["artifacts"]}
    assert rows == {"written": "pending", "never_written": "pending"}
    assert resolve_stale_pending(db, store, older_than_seconds=0) >= 2
    rows = {a["name"]: (a["status"], a["drop_reason"]) for a in query.get_run(db, run_id)["steps"][0]["artifacts"]}
    assert rows == {"written": ("stored", None), "never_written": ("dropped", "lost")}


def test_reading_an_artifact_while_the_store_is_down_is_a_503(settings, db, s3_server):
    proxy = TcpProxy(tuple_of(s3_server.endpoint)).start()
    client, _ = make_client(
        settings,
        db,
        s3_endpoint=f"127.0.0.1:{proxy.port}",
        s3_access_key="test",
        s3_secret_key="testtest",
        artifact_timeout=0.5,
        s3_bucket="xray-test",
    )
    run_id, result = send(client, [filter_end([{"name": "a", "payload": [1]}])])
    assert result["artifacts"][0]["status"] == "stored"
    proxy.cut()
    response = client.get(f"/api/v1/artifacts/{result['artifacts'][0]['artifact_id']}")
    assert_error(response, 503, "artifact_store_unavailable")
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 200  # the run view never needs the store


def test_gc_deletes_old_runs_artifacts_and_marks_their_rows(db, settings, tmp_path):
    store = LocalDirStore(tmp_path)
    writer = ArtifactWriter(store, budget_ms=1000, budget_bytes=10**6, concurrency=1)
    old_run, new_run = str(uuid.uuid4()), str(uuid.uuid4())
    ingest.create_run(db, {"run_id": old_run, "pipeline": "gc", "entity": "e", "started_at": ts(-40 * 86400)})
    for run_id in (old_run, new_run):
        ingest.ingest_events(db, run_id, {"events": [filter_end([{"name": "a", "payload": [run_id]}])]}, writer)
    result = collect(db, store, timedelta(days=30))
    assert result["deleted"] >= 1
    old = query.get_run(db, old_run)["steps"][0]["artifacts"][0]
    new = query.get_run(db, new_run)["steps"][0]["artifacts"][0]
    assert (old["status"], old["drop_reason"]) == ("dropped", "retention")
    assert new["status"] == "stored" and store.exists(new["store_key"])
    assert not store.exists(old["store_key"])


def tuple_of(endpoint):
    host, port = endpoint.split(":")
    return host, int(port)


class SlowProxy(TcpProxy):
    """A proxy that holds every new connection `delay` seconds before forwarding it."""

    def __init__(self, endpoint, delay):
        super().__init__(tuple_of(endpoint))
        self.delay = delay

    def _connect_upstream(self):
        time.sleep(self.delay)
        return super()._connect_upstream()

    def stop(self):
        self.cut()

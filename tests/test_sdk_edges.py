"""Edges of the SDK found in review: each once lost data, stalled delivery or raised."""

import gc
import os
import threading
import time
import types
import uuid

import pytest

import xray_sdk
from tests.support.clients import REAL_SERVER_TIMEOUT
from tests.support.http import call
from xray_sdk.contract.metrics import evaluate_metrics
from xray_sdk.serialize import dumps
from xray_sdk.values import label


def test_huge_artifacts_never_cost_a_step_its_metrics(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, capture="full", timeout=REAL_SERVER_TIMEOUT)
    with client.start_run(pipeline, "B0BIG") as run:
        with run.step("compat_filter", "filter") as step:
            step.candidates(1000, 10)
            for i in range(6):
                step.artifact(f"blob{i}", "x" * 900_000, capture="full")
        run.finish(outcome={"big": "y" * 100_000})
    assert client.flush(30)
    assert client.stats()["dropped_total"] == 0
    status, view = call(xray_server.base_url, "GET", f"/api/v1/runs/{run.run_id}")
    step = view["steps"][0]
    assert step["metrics"]["drop_ratio"] == 0.99
    reasons = [a["drop_reason"] for a in step["artifacts"]]
    assert "too_large" in reasons  # the event stayed under the server's body limit
    assert view["outcome"]["_truncated"] is True


def test_flush_waits_only_for_what_was_queued_before_it(server, sdk_client):
    client = sdk_client(server.url)
    stop = threading.Event()

    def busy():
        run = client.start_run("busy", "B0")
        # A steady stream, not a flood: on a loaded machine a flood fills the bounded queue, and
        # the run under test would be dropped as `queue_full`, which is not what this tests.
        while not stop.wait(0.0005):
            run.step("s", "custom", lambda step: None)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        time.sleep(0.2)
        with client.start_run("mine", "B0") as run:
            run.step("s", "search", lambda step: None)
        assert client.flush(10)
    finally:
        stop.set()
        worker.join()
    assert any(r["pipeline"] == "mine" for r in server.runs)


def test_flush_waits_for_an_older_run_still_retried_while_newer_runs_are_delivered(server, sdk_client):
    """A batch sends run creations first and a failed request's events go back to wait: counting
    resolved items let runs created after flush() stand in for an older run's events."""
    client = sdk_client(server.url)
    old = client.start_run("old", "B0")
    old.step("s", "search", lambda step: None)
    server.failing_events[old.run_id] = 2  # retried twice, delivered the third time
    seen_at_return: list[list[str]] = []

    def flush() -> None:
        assert client.flush(10)
        seen_at_return.append([e["name"] for e in server.events])

    flusher = threading.Thread(target=flush)
    flusher.start()
    for i in range(40):  # newer runs, created while the old run's events wait for their retry
        client.start_run("new", f"B{i}")
        time.sleep(0.005)
    flusher.join()
    assert seen_at_return == [["s"]]


def test_bare_decorator_keeps_the_functions_result(server, sdk_client):
    @xray_sdk.step
    def rank(x):
        return x * 2

    client = sdk_client(server.url)
    with client.start_run("p", "e"):
        assert rank(3) == 6
    assert client.flush(5)
    assert [e["name"] for e in server.events if e["type"] == "step_end"] == ["rank"]


def test_a_bizarre_answer_never_leaves_events_in_flight(server, sdk_client):
    server.mode = "weird207"
    client = sdk_client(server.url)
    with client.start_run("p", "e") as run:
        run.step("s", "search", lambda step: None)
    assert client.flush(5)
    stats = client.stats()
    assert stats["pending"] == 0
    assert stats["enqueued"] == stats["sent"] + stats["dropped_total"]


def test_a_run_id_that_is_not_a_uuid_is_mapped_to_one(server, sdk_client):
    client = sdk_client(server.url)
    with client.start_run("p", "e", run_id="my run 1") as run:
        run.step("s", "search", lambda step: None)
    with client.start_run("p", "e") as good:
        good.step("s", "search", lambda step: None)
    assert client.flush(5)
    assert str(uuid.UUID(run.run_id)) == run.run_id
    assert client.start_run("p", "e", run_id="my run 1").run_id == run.run_id  # stable mapping
    assert client.stats()["contract_errors"] == 2
    with pytest.raises(xray_sdk.XRayContractError):
        sdk_client(server.url, mode="strict").start_run("p", "e", run_id="my run 1")


def test_an_unknown_capture_on_a_run_falls_back_and_keeps_the_steps(server, sdk_client):
    client = sdk_client(server.url)
    with client.start_run("p", "e", capture="everything") as run, run.step("f", "custom") as step:
        step.artifact("a", [1], capture="summary")
    assert client.flush(5)
    assert [e["name"] for e in server.events if e["type"] == "step_end"] == ["f"]
    assert client.stats()["internal_errors"] == 0


def test_huge_integers_never_raise(server, sdk_client):
    client = sdk_client(server.url)
    with client.start_run("p", "e") as run, run.step(10**5000, "custom") as step:
        step.why(10**5000).output({"x": 10**5000}).metrics(n=10**5000)
    assert client.flush(5)
    assert client.stats()["internal_errors"] == 0
    assert dumps(10**5000) == b'"<int of 16610 bits>"'


def test_too_many_metrics_keep_the_standard_ones():
    metrics = {f"m{i}": i for i in range(100)}
    metrics.update(candidates_in=100, candidates_out=1)
    verdict = evaluate_metrics("filter", metrics)
    assert verdict.metrics["drop_ratio"] == 0.99
    assert len(verdict.metrics) <= 65 and "metrics" in verdict.errors


def test_labels_are_cut_per_call_not_per_cache():
    text = "n" * 100
    assert (len(label(text, 64)), len(label(text, 200))) == (64, 100)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_resend_its_parents_open_steps(server, sdk_client):
    client = sdk_client(server.url, start_delay=0.2)
    run = client.start_run("fork", "B0")
    with run.step("parent_long", "search"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                time.sleep(0.5)  # long enough for a step_start, were the parent's step still tracked
                client.flush(5)
                code = 0
            finally:
                os._exit(code)
        os.waitpid(pid, 0)
        time.sleep(0.3)
    assert client.flush(5)
    starts = [e for e in server.events if e["type"] == "step_start"]
    assert [e["name"] for e in starts] == ["parent_long"]


def test_a_client_that_is_dropped_is_freed(server):
    # Not from sdk_client: the factory holds every client it makes, to close it at teardown.
    client = xray_sdk.Client(server.url)
    client.start_run("p", "e").finish()
    assert client.flush(5)
    ref = __import__("weakref").ref(client)
    del client
    gc.collect()
    assert ref() is None


def test_mappings_generators_and_views_serialise_as_data():
    assert dumps(types.MappingProxyType({"a": 1})) == b'{"a":1}'
    assert dumps({"g": (i for i in range(3)), "k": {"x": 1}.keys()}) == b'{"g":[0,1,2],"k":["x"]}'

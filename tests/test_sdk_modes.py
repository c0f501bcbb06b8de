"""strict mode raises on instrumentation mistakes; best_effort survives anything."""

import asyncio
import math

import pytest

import xray_sdk
from xray_sdk import XRayContractError, XRayDeliveryError


def ends(server):
    return {e["name"]: e for e in server.events if e["type"] == "step_end"}


def test_strict_unknown_step_type_raises_at_the_step(server, sdk_client):
    client = sdk_client(server.url, mode="strict")
    run = client.start_run("p", "e")
    with pytest.raises(XRayContractError, match="classifier"), run.step("x", "classifier"):
        pytest.fail("the body must not run")


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"candidates_in": 10}, "missing_metric:candidates_out"),
        ({"candidates_in": 10, "candidates_out": 1, "drop_ratio": 0.2}, "drop_ratio"),
        ({"candidates_in": "ten", "candidates_out": 1}, "candidates_in"),
    ],
)
def test_strict_bad_filter_metrics_raise_after_the_step_is_recorded(server, sdk_client, metrics, message):
    client = sdk_client(server.url, mode="strict")
    run = client.start_run("p", "e")
    with pytest.raises(XRayContractError, match=message), run.step("f", "filter") as step:
        step.metrics(metrics)
    assert client.flush(5)
    assert "f" in ends(server)  # the step still lands, without the unusable values


def test_strict_never_replaces_the_pipelines_own_exception(server, sdk_client):
    client = sdk_client(server.url, mode="strict")
    run = client.start_run("p", "e")
    with pytest.raises(KeyError), run.step("f", "filter"):
        raise KeyError("the pipeline's bug")


def test_strict_flush_raises_when_events_were_lost(server, sdk_client):
    server.mode = "reject400"
    client = sdk_client(server.url, mode="strict")
    with client.start_run("p", "e") as run:
        run.step("s", "search", lambda step: None)
    with pytest.raises(XRayDeliveryError, match="rejected_by_server"):
        client.flush(5)


def test_best_effort_keeps_the_step_and_counts_the_mistake(server, sdk_client):
    client = sdk_client(server.url, mode="best_effort")
    with client.start_run("p", "e") as run, run.step("x", "classifier") as step:
        step.metrics(candidates_in=10, candidates_out=20, score=math.nan)
    assert client.flush(5)
    end = ends(server)["x"]
    assert end["step_type"] == "custom"
    # The unusable value is left out and the step still lands; a custom step may fan out (20 of 10).
    assert end["metrics"] == {"candidates_in": 10, "candidates_out": 20}
    assert client.stats()["contract_errors"] == 2  # the type, the metrics


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


class Opaque:
    def __repr__(self):
        raise RuntimeError("no repr either")


@pytest.mark.parametrize("raised", [Unprintable(), KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_best_effort_reraises_odd_exceptions_unchanged(server, sdk_client, raised):
    client = sdk_client(server.url, mode="best_effort")
    run = client.start_run("p", "e")

    def fail(step):
        raise raised

    with pytest.raises(type(raised)) as info:
        run.step("s", "search", fail)
    assert info.value is raised
    assert client.flush(5)
    assert ends(server)["s"]["status"] == "error"


def test_best_effort_survives_hostile_values(server, sdk_client):
    client = sdk_client(server.url, mode="best_effort")
    loop = []
    loop.append(loop)
    deep = current = {}
    for _ in range(1000):
        current["d"] = {}
        current = current["d"]
    with client.start_run("p\x00", "e", tags={"k": Opaque()}, metadata={"o": Opaque()}) as run:
        with run.step("s", "search", input={"loop": loop, "deep": deep}) as step:
            step.output({1: {2, 3}, "bytes": b"\xff", "huge": "x" * 10_000_000, "nan": math.nan})
            step.why("w" * 100_000)
            step.why(Opaque())  # not text, and not even printable: kept as a placeholder
            step.metrics(note="a\x00b", big=10**400)
            step.artifact("blob", Opaque(), capture="summary")
    assert client.flush(5)
    end = ends(server)["s"]
    assert end["why"] == "<unrepresentable Opaque>"
    assert end["output"]["_truncated"] is True
    assert client.stats()["internal_errors"] == 0


def test_async_steps_record_errors_and_parentage(server, sdk_client):
    client = sdk_client(server.url, mode="best_effort")

    async def pipeline(run):
        async with run.step("outer", "custom"):

            async def child(i):
                async with run.step(f"child{i}", "custom") as step:
                    step.metrics(i=i)

            await asyncio.gather(*(child(i) for i in range(3)))
        with pytest.raises(ValueError):
            async with run.step("fails", "custom"):
                raise ValueError("x")

    with client.start_run("p", "e") as run:
        asyncio.run(pipeline(run))
    assert client.flush(5)
    by_name = ends(server)
    outer_id = by_name["outer"]["step_id"]
    assert all(by_name[f"child{i}"]["parent_step_id"] == outer_id for i in range(3))
    assert by_name["fails"]["status"] == "error"


def test_disabled_client_runs_the_pipeline_and_sends_nothing(server, sdk_client):
    client = sdk_client(server.url, disabled=True)
    with client.start_run("p", "e") as run:
        assert run.step("s", "search", lambda step, x: x + 1, 1) == 2
    assert client.flush(1)
    assert server.requests == 0


def test_bad_settings_fall_back_to_safe_defaults(monkeypatch):
    monkeypatch.setenv("XRAY_MODE", "strcit")
    monkeypatch.setenv("XRAY_CAPTURE", "everything")
    client = xray_sdk.Client("not a url")
    assert (client.mode, client.capture, client.disabled) == ("best_effort", "summary", True)

"""Runs and steps reach their client only through its Recorder, and `run.step` keeps its own
options (`input=`, `capture=`, `id_field=`) apart from the arguments of the user's function."""

import asyncio
import json

import pytest

import xray_sdk
from tests.support.scripted_server import ScriptedServer
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.errors import XRayContractError
from xray_sdk.ratelog import RateLimitedLog
from xray_sdk.recorder import Recorder
from xray_sdk.run import Run


@pytest.fixture()
def server():
    running = ScriptedServer().start()
    yield running
    running.stop()


def recorder_run(strict=False):
    """A run wired to nothing but a recorder: the items it would deliver land in a list."""
    items = []
    recorder = Recorder(
        deliver=lambda item: items.append(item) or True,
        pressure=lambda: 0.0,
        limits=DEFAULT_LIMITS,
        strict=strict,
        disabled=False,
        log=RateLimitedLog(),
    )
    return Run(None, recorder, "00000000-0000-4000-8000-000000000001", "p", "e", "summary"), recorder, items


def decoded(items):
    return [json.loads(item.data) for item in items]


def step_end(server, name):
    return next(e for e in server.events if e["type"] == "step_end" and e["name"] == name)


def test_a_run_and_its_steps_need_only_a_recorder():
    run, recorder, items = recorder_run()
    with run:
        with run.step("f", "filter") as step:
            step.candidates(10, 4).artifact("big", [1], capture="full")
        with run.step("s", "no_such_type"):
            pass
    events = decoded(items)
    assert [e["type"] for e in events] == ["step_end", "step_end", "run_finish"]
    assert events[0]["metrics"] == {"candidates_in": 10, "candidates_out": 4, "drop_ratio": 0.6}
    assert recorder.contract_errors == 1  # the unknown step type
    assert recorder.artifacts_dropped == {"capture_policy": 1}


def test_a_strict_recorder_raises_contract_errors_at_the_step():
    run, recorder, _ = recorder_run(strict=True)
    with pytest.raises(XRayContractError):
        run.step("s", "no_such_type")
    assert recorder.contract_errors == 1


def test_the_pipelines_own_exception_wins_over_a_contract_error():
    run, recorder, items = recorder_run(strict=True)
    with pytest.raises(KeyError), run.step("f", "filter"):  # a filter without its required metrics
        raise KeyError("boom")
    assert recorder.contract_errors == 1
    assert decoded(items)[0]["status"] == "error"


def test_a_step_sends_its_start_once_when_due_and_never_after_it_ended():
    run, recorder, items = recorder_run()
    with run.step("long", "search", input={"q": "case"}) as step:
        recorder.send_overdue_starts(threshold=step._t0 - 1)  # not yet due
        assert items == []
        recorder.send_overdue_starts(threshold=step._t0)
        recorder.send_overdue_starts(threshold=step._t0 + 1)
        starts = decoded(items)
        assert [(e["type"], e["name"], e["input"]) for e in starts] == [("step_start", "long", {"q": "case"})]
    assert step.start_event_if_due(step._t0 + 1) is None
    with run.step("short", "search") as short:
        pass
    assert short.start_event_if_due(short._t0 + 1) is None
    recorder.send_overdue_starts(threshold=short._t0 + 1)
    assert [e["type"] for e in decoded(items)] == ["step_start", "step_end", "step_end"]


def test_a_disabled_recorder_sends_nothing_and_tracks_no_steps():
    run, recorder, items = recorder_run()
    recorder.disabled = True
    with run.step("s", "search") as step:
        recorder.send_overdue_starts(threshold=step._t0 + 1)
    run.finish()
    assert items == []


def test_the_function_form_records_input_and_the_function_never_receives_it(server):
    client = xray_sdk.Client(server.url)
    seen = {}

    def block(step, records, *, limit):
        seen.update(records=records, limit=limit)
        return len(records)

    with client.start_run("p", "e") as run:
        result = run.step("block", "search", block, ["r1", "r2"], input={"query": "case"}, limit=5)
    assert client.flush(5)
    assert result == 2
    assert seen == {"records": ["r1", "r2"], "limit": 5}
    assert step_end(server, "block")["input"] == {"query": "case"}
    client.close()


def test_the_function_form_takes_capture_and_id_field_as_its_own(server):
    client = xray_sdk.Client(server.url, capture="summary")
    received = []

    def rank(step, candidates, **kwargs):
        received.append(kwargs)
        for c in candidates:
            step.keep(c)

    with client.start_run("p", "e") as run:
        run.step("rank", "rank", rank, [{"sku": "A1"}], capture="sample", id_field="sku")
    assert client.flush(5)
    assert received == [{}]
    artifacts = {a["name"]: a for a in step_end(server, "rank")["artifacts"]}
    assert artifacts["kept_sample"]["payload"] == [{"id": "A1", "candidate": {"sku": "A1"}}]
    client.close()


def test_the_async_function_form_keeps_its_options_too(server):
    client = xray_sdk.Client(server.url)

    async def fetch(step, *args, **kwargs):
        return args, kwargs

    async def pipeline():
        with client.start_run("p", "e") as run:
            return await run.step("fetch", "search", fetch, 1, input=[1, 2], page=3)

    assert asyncio.run(pipeline()) == ((1,), {"page": 3})
    assert client.flush(5)
    assert step_end(server, "fetch")["input"] == [1, 2]
    client.close()

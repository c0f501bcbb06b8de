"""Process life: fork, exit without finish(), a collector that never answers at exit, and
the SDK vendored by copying its folder."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Liveness bound: exit must come from the SDK's 1 s shutdown deadline, not from the 60 s the
# blackholed server would hold a request.
EXIT_SECONDS = 15


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_sends_only_its_own_events_and_the_parent_sends_its_own_once(server, sdk_client):
    # A long interval keeps the parent's events queued until after the fork.
    client = sdk_client(server.url, flush_interval=60, batch_max_items=10_000)
    parent_run = client.start_run("parent", "B0P")
    parent_run.step("s", "search", lambda step: None)
    pid = os.fork()
    if pid == 0:  # the child: a fresh queue, its own thread
        code = 1
        try:
            child_run = client.start_run("child", "B0C")
            child_run.step("s", "search", lambda step: None)
            child_run.finish()
            ok = client.flush(10)
            stats = client.stats()
            code = 0 if ok and stats["enqueued"] == 3 and stats["sent"] == 3 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent_run.finish()
    assert client.flush(10)
    assert sorted(r["pipeline"] for r in server.runs) == ["child", "parent"]
    ids = server.event_ids()
    assert len(ids) == len(set(ids)) == 4  # a step_end and a run_finish a run, none twice


def run_script(body: str, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    script = textwrap.dedent(body)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    return result, time.monotonic() - started


EXIT_WITHOUT_FINISH = """
    import os, xray_sdk
    client = xray_sdk.Client(os.environ["URL"], shutdown_timeout=1.0)
    run = client.start_run("no_finish", "B0X")
    for i in range(5):
        with run.step(f"s{i}", "search") as step:
            step.metrics(results=i)
    print("pipeline done")
"""


def test_a_process_that_exits_without_finish_delivers_its_steps(server):
    result, _ = run_script(EXIT_WITHOUT_FINISH, {"URL": server.url})
    assert result.returncode == 0, result.stderr
    assert "pipeline done" in result.stdout
    assert len(server.runs) == 1
    assert len(server.event_ids()) == 5


def test_a_process_exits_promptly_when_the_collector_never_answers(server):
    server.mode = "blackhole"
    result, elapsed = run_script(EXIT_WITHOUT_FINISH, {"URL": server.url})
    assert result.returncode == 0, result.stderr
    assert elapsed < EXIT_SECONDS


def test_a_process_exits_promptly_when_the_collector_is_down():
    result, elapsed = run_script(EXIT_WITHOUT_FINISH, {"URL": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr
    assert elapsed < EXIT_SECONDS


def test_the_sdk_works_when_its_folder_is_copied_into_another_project(server, tmp_path):
    shutil.copytree(ROOT / "xray_sdk", tmp_path / "vendor" / "xray_sdk")
    script = f"""
        import sys
        sys.path[:0] = [{str(tmp_path / "vendor")!r}]
        import xray_sdk
        assert xray_sdk.__file__.startswith({str(tmp_path)!r}), xray_sdk.__file__
        client = xray_sdk.Client({server.url!r})
        with client.start_run("vendored", "B0V") as run:
            with run.step("f", "filter") as step:
                step.candidates(10, 1)
        assert client.flush(10)
    """
    # -I: isolated, so nothing from this project's environment can be imported by accident.
    result = subprocess.run(
        [sys.executable, "-I", "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert [r["pipeline"] for r in server.runs] == ["vendored"]


def test_the_sdk_ships_type_information():
    assert (ROOT / "xray_sdk" / "py.typed").exists()

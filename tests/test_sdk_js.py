"""The TypeScript SDK's own suite (xray-sdk-js/test/, Node's built-in test runner), run by the
README's test command: built from a clean clone (`npm ci` when node_modules is missing or older
than the lock file, then tsc), against the real X-Ray under gunicorn that the Python tests use, and against small
misbehaving `node:http` servers of its own; and, as test_faults.py does for the Python SDK,
PostgreSQL vanishing behind a real gunicorn while a Node pipeline sends. Skipped, saying why,
where Node.js is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_faults import proxied, stored_counts
from xray_cli import main
from xray_server.runtime.local_server import LocalServer

PACKAGE = Path(__file__).resolve().parent.parent / "xray-sdk-js"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def _node_version() -> tuple[int, int]:
    """(major, minor) of the `node` on PATH; (0, 0) when there is none."""
    if NODE is None:
        return (0, 0)
    text = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    major, minor, *_ = text.strip().lstrip("v").split(".")
    return int(major), int(minor)


NODE_VERSION = _node_version()

pytestmark = pytest.mark.skipif(
    NPM is None or NODE_VERSION < (18, 0), reason="Node.js 18 or later (node and npm) is not on PATH"
)


@pytest.fixture(scope="module")
def built_package():
    """The package's dependencies installed from its lock file, and both builds compiled."""
    assert NODE is not None and NPM is not None
    if _dependencies_stale():
        _run([NPM, "ci", "--no-audit", "--no-fund"], "npm ci")
    _run([NODE, "scripts/build.mjs"], "the build (tsc)")
    return PACKAGE


def _dependencies_stale() -> bool:
    """True when node_modules is missing, or older than the lock file (npm records what it
    installed in node_modules/.package-lock.json)."""
    installed = PACKAGE / "node_modules" / ".package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < (PACKAGE / "package-lock.json").stat().st_mtime


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=PACKAGE, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (
        f"{what} failed ({' '.join(command)}):\n{_failures(result.stdout)}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _failures(tap: str) -> str:
    """The failed tests of a TAP report with what each said, else the report's end."""
    lines = tap.splitlines()
    failed = [i for i, line in enumerate(lines) if line.lstrip().startswith("not ok")]
    if not failed:
        return tap[-8000:]
    return "\n\n".join("\n".join(lines[i : i + 40]) for i in failed)[:16000]


def test_the_typescript_sdk_passes_its_suite_against_the_real_server_and_misbehaving_ones(built_package, xray_server):
    assert NODE is not None
    env = {**os.environ, "XRAY_TEST_ENDPOINT": xray_server.base_url}
    # The test files by name: Node would also run every module under test/ (the support ones).
    files = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.glob("test/*.test.mjs"))
    assert len(files) >= 5, files
    # One file at a time where Node can be told (20.10 and later): the machine is small, and the
    # fault tests time their own servers.
    one_at_a_time = ["--test-concurrency=1"] if NODE_VERSION >= (20, 10) else []
    output = _run([NODE, "--test", *one_at_a_time, *files], "the TypeScript SDK's suite", env)
    assert "# fail 0" in output
    assert "# skipped 0" in output, "a test was skipped: is XRAY_TEST_ENDPOINT reaching the suite?"


def test_postgres_vanishing_under_typescript_sdk_load_loses_nothing_acknowledged(
    built_package, db, pg_url, pipeline, tmp_path
):
    assert NODE is not None
    proxy, url = proxied(pg_url)
    env = {
        "XRAY_DATABASE_URL": url,
        "XRAY_WORKERS": "1",
        "XRAY_DB_POOL_TIMEOUT": "0.5",
        "XRAY_DB_RECONNECT_TIMEOUT": "1",
        "XRAY_ARTIFACTS_DIR": str(tmp_path),
    }
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        sender = subprocess.Popen(
            [NODE, str(PACKAGE / "test" / "support" / "sender.mjs")],
            env={**os.environ, "XRAY_ENDPOINT": server.base_url, "PIPELINE": pipeline},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.5)
            proxy.cut()  # PostgreSQL gone: the server answers 503, the SDK backs off and keeps what fits
            time.sleep(2.0)
            proxy.restore()
            time.sleep(0.5)
            out, err = sender.communicate("stop\n", timeout=120)
        finally:
            if sender.poll() is None:
                sender.kill()
    proxy.cut()
    assert sender.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    stats = report["stats"]
    assert report["flushed"] is True, stats
    assert stats["droppedTotal"] == 0 and stats["retries"] > 0, stats
    runs, events = stored_counts(db, pipeline)
    # Exactly what the SDK reports as sent: a create, 25 steps and a finish per run.
    assert runs + events == stats["sent"] == report["runs"] * 27


def test_a_node_pipelines_run_reads_in_the_xray_command_as_a_python_ones_does(built_package, xray_server, pipeline):
    assert NODE is not None
    env = {**os.environ, "XRAY_ENDPOINT": xray_server.base_url, "PIPELINE": pipeline}
    made = subprocess.run(
        [NODE, str(PACKAGE / "test" / "support" / "one_run.mjs")], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.strip()
    cli = CliRunner()
    url = ["--url", xray_server.base_url]

    shown = cli.invoke(main, ["show", *url, run_id])
    assert shown.exit_code == 0, shown.output
    for text in ("generate_keywords", "gpt-x", "unknown_step_type:fitler", "compat_filter", "category_mismatch"):
        assert text in shown.output, (text, shown.output)

    dropped = cli.invoke(main, ["why-dropped", *url, run_id, "S3"])
    assert dropped.exit_code == 0 and "compat_filter" in dropped.output and "category_mismatch" in dropped.output
    explained = cli.invoke(main, ["explain", *url, run_id])
    assert explained.exit_code == 0 and "fitler" in explained.output, explained.output
    listed = cli.invoke(main, ["steps", *url, "--pipeline", pipeline, "--violation", "unknown_step_type"])
    assert listed.exit_code == 0 and "skills" in listed.output, listed.output
    patterns = cli.invoke(
        main, ["patterns", *url, "--pipeline", pipeline, "--type", "filter", "--min-drop-ratio", "0.9"]
    )
    assert patterns.exit_code == 0, patterns.output

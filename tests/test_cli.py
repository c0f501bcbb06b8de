"""The `xray` command, through its entry point, against a real server under gunicorn."""

import json
import uuid

import pytest
from click.testing import CliRunner

from tests.support.events import competitor_run
from tests.support.http import call
from xray_cli import main
from xray_server.storage.migrations import LATEST_VERSION


def invoke(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    return result


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("serve", "migrate", "demo", "runs", "show", "steps", "explain", "diff"):
        assert command in result.output


def test_migrate_applies_the_schema(pg_url):
    result = invoke("migrate", env={"XRAY_DATABASE_URL": pg_url})
    assert result.exit_code == 0, result.output
    assert f"schema at version {LATEST_VERSION}" in result.output


def test_migrate_without_a_database_says_what_to_do():
    result = invoke("migrate", env={"XRAY_DATABASE_URL": ""})
    assert result.exit_code == 2
    assert "XRAY_DATABASE_URL is not set" in result.output


def send(server, pipeline, bad):
    run_id = str(uuid.uuid4())
    call(server.base_url, "POST", "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": f"B0{bad}"})
    call(server.base_url, "POST", f"/api/v1/runs/{run_id}/events", {"events": competitor_run(drop_ratio_bad=bad)})
    return run_id


def test_runs_show_steps_explain_and_diff_against_a_real_server(xray_server, pipeline):
    url = xray_server.base_url
    # Enough good runs for a baseline (explain trusts one of 50 steps or more).
    good = [send(xray_server, pipeline, False) for _ in range(55)]
    bad = send(xray_server, pipeline, True)

    result = invoke("runs", "--url", url, "--pipeline", pipeline, "--json")
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.output)["runs"]][0] == bad

    result = invoke("show", "--url", url, bad)
    assert result.exit_code == 0, result.output
    assert "compat_filter" in result.output and "drop_ratio=0.994" in result.output

    result = invoke(
        "steps",
        "--url",
        url,
        "--pipeline",
        pipeline,
        "--type",
        "filter",
        "--min-drop-ratio",
        "0.9",
        "--since",
        "1h",
        "--json",
    )
    assert [s["run_id"] for s in json.loads(result.output)["steps"]] == [bad]
    table = invoke("steps", "--url", url, "--pipeline", pipeline, "--type", "filter", "--min-drop-ratio", "0.9")
    assert bad in table.output and good[0] not in table.output

    result = invoke("explain", "--url", url, bad, "--json")
    assert result.exit_code == 0, result.output
    top = json.loads(result.output)["findings"][0]
    assert (top["kind"], top["step"]) == ("outlier", "compat_filter")
    assert "Most likely cause: step 2 'compat_filter'" in invoke("explain", "--url", url, bad).output
    assert json.loads(invoke("explain", "--url", url, good[0], "--json").output)["findings"] == []

    result = invoke("diff", "--url", url, good[0], bad, "--json")
    changes = {s["name"]: s["changes"] for s in json.loads(result.output)["steps"]}
    assert changes["compat_filter"]["metrics.drop_ratio"] == [pytest.approx(0.68), pytest.approx(0.994)]
    assert "metrics.drop_ratio" in invoke("diff", "--url", url, good[0], bad).output


def test_cli_errors_say_what_to_do(xray_server):
    result = invoke("show", "--url", xray_server.base_url, str(uuid.uuid4()))
    assert result.exit_code == 1 and "404 not_found" in result.output
    result = invoke("runs", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach X-Ray" in result.output and "xray serve" in result.output
    result = invoke("steps", "--url", xray_server.base_url, "--since", "soon")
    assert result.exit_code == 1 and "since" in result.output


def test_odd_run_ids_are_one_path_segment(xray_server):
    for odd in ("a b", "../steps"):
        result = invoke("show", "--url", xray_server.base_url, odd)
        # Refused as a bad id (400) or as no such run (404): never another endpoint's answer.
        assert result.exit_code == 1 and (
            "400 validation_error" in result.output or "404 not_found" in result.output
        ), result.output

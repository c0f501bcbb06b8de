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
    drawn = invoke("explain", "--url", url, bad).output
    assert "Most likely cause: step 2 'compat_filter'" in drawn
    assert "this run ● beside the earlier runs' p10 to p90" in drawn, drawn
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


def test_show_and_reasons_print_the_rejection_counts_per_reason(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, timeout=30)
    agents = [{"id": f"a{i}", "language": "en" if i < 6 else "pt-BR", "skill": i % 3} for i in range(10)]
    for _ in range(2):
        with client.start_run(pipeline, "ticket-pt") as run, run.step("skills", "filter", id_field="id") as step:
            step.decide(
                [a for a in agents if a["language"] == "pt-BR" and a["skill"]],
                [(a, "language_mismatch") for a in agents if a["language"] == "en"]
                + [(a, "no_skill") for a in agents if a["language"] == "pt-BR" and not a["skill"]],
            )
    assert client.flush(10)

    shown = invoke("show", "--url", xray_server.base_url, run.run_id)
    assert shown.exit_code == 0, shown.output
    assert "step 0 skills rejected: language_mismatch 6, no_skill 2" in shown.output, shown.output

    listed = invoke("reasons", "--url", xray_server.base_url, "--pipeline", pipeline)
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.splitlines()]
    assert lines[0][0] == "2", listed.output  # two steps rejected candidates
    rows = {row[0]: row[1:] for row in lines if row and row[0] in ("language_mismatch", "no_skill")}
    assert rows == {"language_mismatch": ["12", "2", "60.0%"], "no_skill": ["4", "2", "20.0%"]}, listed.output


def test_a_run_is_found_by_a_unique_prefix_of_its_id_and_an_ambiguous_one_lists_the_candidates(xray_server, pipeline):
    url = xray_server.base_url
    base = uuid.uuid4().hex[:6]  # the same database may hold an earlier session's runs
    run_ids = [f"{base}01-0000-4000-8000-000000000001", f"{base}02-0000-4000-8000-000000000002"]
    for run_id in run_ids:
        call(url, "POST", "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": run_id[:8]})

    shown = invoke("show", "--url", url, f"{base}02")
    assert shown.exit_code == 0 and f"run {run_ids[1]}" in shown.output, shown.output
    explained = invoke("explain", "--url", url, f"{base.upper()}01-0", "--json")
    assert explained.exit_code == 0 and json.loads(explained.output)["run_id"] == run_ids[0], explained.output

    ambiguous = invoke("show", "--url", url, f"{base}0")
    assert ambiguous.exit_code == 1 and "more than one run" in ambiguous.output, ambiguous.output
    assert run_ids[0] in ambiguous.output and run_ids[1] in ambiguous.output
    missing = invoke("show", "--url", url, f"{base}03")
    assert missing.exit_code == 1 and f"no run id starts with '{base}03'" in missing.output, missing.output


def test_cli_errors_name_the_flags_the_user_typed(xray_server, pipeline):
    url = xray_server.base_url
    typo = invoke("steps", "--url", url, "--type", "filtr")
    assert typo.exit_code == 2 and "'filtr' is not one of" in typo.output and "--type" in typo.output, typo.output
    ratio = invoke("steps", "--url", url, "--min-drop-ratio", "1.5")
    assert ratio.exit_code == 1 and "--min-drop-ratio:" in ratio.output and "{" not in ratio.output, ratio.output
    nothing_bad = invoke("patterns", "--url", url, "--pipeline", pipeline)
    assert nothing_bad.exit_code == 2, nothing_bad.output
    assert "step_type" not in nothing_bad.output and "--min-drop-ratio" in nothing_bad.output, nothing_bad.output


def test_a_tag_filter_takes_either_separator_in_the_cli_and_the_api(xray_server, pipeline):
    url = xray_server.base_url
    run_id = str(uuid.uuid4())
    call(
        url, "POST", "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": "e", "tags": {"lang": "pt:BR"}}
    )
    for form in ("lang=pt:BR", "lang:pt:BR"):
        listed = invoke("runs", "--url", url, "--pipeline", pipeline, "--tag", form, "--json")
        assert [r["run_id"] for r in json.loads(listed.output)["runs"]] == [run_id], (form, listed.output)
        status, body = call(url, "GET", f"/api/v1/runs?pipeline={pipeline}&tag={form}")
        assert status == 200 and [r["run_id"] for r in body["runs"]] == [run_id], (form, body)
    assert invoke("runs", "--url", url, "--tag", "=x").exit_code == 2

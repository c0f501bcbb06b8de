"""The demo, small: its walkthrough names the bad filter for the bad runs and not the good ones."""

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

from click.testing import CliRunner

from tests.support.http import call
from xray_cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_the_walkthrough_finds_the_bad_filter_and_its_pattern(xray_server):
    result = CliRunner().invoke(main, ["demo", "--url", xray_server.base_url, "--runs", "80", "--json"])
    assert result.exit_code == 0, result.output
    walk = json.loads(result.output)
    assert walk["sent"]["events_dropped"] == 0
    bad = set(walk["bad_runs"])
    assert bad, "the demo's bug must show"
    runs = {r["run_id"]: r for r in _all_runs(xray_server, walk["since"])}
    assert len(runs) == walk["runs"] == 80
    # Bad means the filter dropped 90%+, which happens exactly for feed-B phone cases.
    assert {runs[r]["tags"]["feed"] for r in bad} == {"B"}
    assert all(r["tags"]["feed"] == "A" for rid, r in runs.items() if rid not in bad)
    assert {s["name"] for s in walk["flagged_steps"]} == {"compat_filter"}
    top = walk["explain"]["findings"][0]
    assert (top["kind"], top["step"]) == ("outlier", "compat_filter")
    assert walk["example"]["outcome"]["competitor"]["category"] == "laptop_stand"
    pattern = walk["patterns"]["patterns"][0]
    assert (pattern["attributes"], pattern["bad"], pattern["other"]) == ({"tags.feed": "B"}, len(bad), 0)
    traced = walk["dropped_candidate"]["found"]
    assert (traced["step"], traced["reason"]) == ("compat_filter", "category_not_compatible")
    assert "Phone Case" in traced["candidate"]["title"]  # the right answer, thrown away
    assert "category_not_compatible" in top["message"]
    diff = {s["name"]: s["changes"] for s in walk["diff"]["steps"]}
    ratio_before, ratio_after = diff["compat_filter"]["metrics.drop_ratio"]
    assert ratio_before < 0.9 <= ratio_after


def _all_runs(server, since):
    query = urllib.parse.urlencode({"pipeline": "competitor_selection", "limit": 1000, "since": since})
    status, page = call(server.base_url, "GET", f"/api/v1/runs?{query}")
    assert status == 200
    return page["runs"]


def test_the_readme_demo_command_starts_everything_itself(tmp_path):
    """`xray demo` with nothing running: embedded PostgreSQL, gunicorn, pipeline, walkthrough."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XRAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "xray_cli", "demo", "--runs", "80"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Ran 80 runs" in out
    assert "Most likely cause: step 2 'compat_filter'" in out
    assert "tags.feed=B is on" in out and "and on no other run." in out
    assert (tmp_path / ".xray" / "pgdata" / "PG_VERSION").exists()

"""Tags as filters: `tag=key:value` (repeatable, ANDed) on /runs and /steps, index-served, and the
CLI's --tag, --reason, --cursor and --all."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner

from tests.support.events import new_id, step_end
from tests.support.http import call
from xray_cli import main


def record(client, pipeline, tags, drop=False):
    run_id = new_id()
    assert (
        client.post(
            "/api/v1/runs", json={"run_id": run_id, "pipeline": pipeline, "entity": "e", "tags": tags}
        ).status_code
        == 201
    )
    out = 1 if drop else 80
    event = step_end(
        new_id(),
        0,
        "f",
        "filter",
        metrics={"candidates_in": 100, "candidates_out": out},
        rejections={"category_not_compatible": 100 - out},
    )
    assert client.post(f"/api/v1/runs/{run_id}/events", json={"events": [event]}).status_code == 200
    return run_id


def test_runs_and_steps_filter_by_every_given_tag(client, pipeline):
    both = record(client, pipeline, {"app_version": "4.2", "market": "au"})
    version_only = record(client, pipeline, {"app_version": "4.2", "market": "nz"})
    record(client, pipeline, {"app_version": "4.1", "market": "au"})
    runs = client.get(f"/api/v1/runs?pipeline={pipeline}&tag=app_version:4.2").get_json()["runs"]
    assert {r["run_id"] for r in runs} == {both, version_only}
    runs = client.get(f"/api/v1/runs?pipeline={pipeline}&tag=app_version:4.2&tag=market:au").get_json()["runs"]
    assert [r["run_id"] for r in runs] == [both]
    steps = client.get(f"/api/v1/steps?pipeline={pipeline}&tag=market:nz").get_json()["steps"]
    assert [s["run_id"] for s in steps] == [version_only]


def test_a_tag_value_may_hold_colons_and_a_malformed_tag_names_the_field(client, pipeline):
    run_id = record(client, pipeline, {"url": "https://example.com:8443"})
    runs = client.get(f"/api/v1/runs?pipeline={pipeline}&tag=url:https://example.com:8443").get_json()["runs"]
    assert [r["run_id"] for r in runs] == [run_id]
    answer = client.get("/api/v1/steps?tag=no-colon")
    assert answer.status_code == 400
    assert "tag" in answer.get_json()["error"]["details"]["fields"]


def test_the_tag_filter_is_served_by_the_index(db, pipeline):
    from xray_server.query import StepQuery, step_query_sql

    statement, params = step_query_sql(StepQuery(tag=[("app_version", "4.2")], pipeline=pipeline))
    with db.connection() as conn:
        conn.execute("SET enable_seqscan = off")  # a tiny test table: ask whether an index can serve it
        plan = "\n".join(
            next(iter(r.values())) for r in conn.execute(b"EXPLAIN " + statement.as_bytes(conn), params).fetchall()
        )
        conn.execute("RESET enable_seqscan")
    assert "Seq Scan" not in plan, plan


def test_the_cli_filters_by_tag_and_reason_and_follows_cursors(xray_server, pipeline):
    from tests.support.http import call

    for i in range(5):
        run_id = new_id()
        call(
            xray_server.base_url,
            "POST",
            "/api/v1/runs",
            {"run_id": run_id, "pipeline": pipeline, "entity": f"e{i}", "tags": {"feed": "B" if i % 2 else "A"}},
        )
        event = step_end(
            new_id(),
            0,
            "f",
            "filter",
            metrics={"candidates_in": 10, "candidates_out": 1},
            rejections={"price_out_of_band" if i % 2 else "category_not_compatible": 9},
        )
        call(xray_server.base_url, "POST", f"/api/v1/runs/{run_id}/events", {"events": [event]})
    url = xray_server.base_url

    def cli(*args):
        result = CliRunner().invoke(main, list(args) + ["--url", url])
        assert result.exit_code == 0, result.output
        return result.output

    page = json.loads(cli("runs", "--pipeline", pipeline, "--tag", "feed=B", "--json"))
    assert {r["tags"]["feed"] for r in page["runs"]} == {"B"} and len(page["runs"]) == 2
    steps = json.loads(
        cli("steps", "--pipeline", pipeline, "--reason", "price_out_of_band", "--min-reason-share", "0.5", "--json")
    )["steps"]
    assert len(steps) == 2 and all("price_out_of_band" in s["rejections"] for s in steps)
    text = cli("runs", "--pipeline", pipeline, "--limit", "2")
    assert "5 runs match; 2 shown." in text and "For the next page add --cursor" in text and "feed=" in text
    everything = json.loads(cli("runs", "--pipeline", pipeline, "--limit", "2", "--all", "--json"))
    assert len(everything["runs"]) == 5 and everything["next_cursor"] is None
    cursor = json.loads(cli("steps", "--pipeline", pipeline, "--limit", "3", "--json"))["next_cursor"]
    rest = json.loads(cli("steps", "--pipeline", pipeline, "--limit", "3", "--cursor", cursor, "--json"))["steps"]
    assert len(rest) == 2


def test_outcome_and_metadata_filters_match_a_top_level_value_of_any_type(xray_server, pipeline):
    url = xray_server.base_url
    wrong, right = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id, correct, version in ((wrong, False, 3), (right, True, "3.1")):
        call(
            url,
            "POST",
            "/api/v1/runs",
            {"run_id": run_id, "pipeline": pipeline, "entity": "e", "metadata": {"version": version}},
        )
        call(url, "POST", f"/api/v1/runs/{run_id}/events", {"events": _finish(correct)})

    def runs(query):
        status, body = call(url, "GET", f"/api/v1/runs?pipeline={pipeline}&{query}")
        assert status == 200, body
        return [r["run_id"] for r in body["runs"]]

    assert runs("outcome=correct:false") == [wrong]
    assert runs("outcome=correct=true") == [right]
    assert runs("metadata=version:3") == [wrong]  # the number 3, not the string "3.1"
    assert runs("metadata=version:3.1") == [right]
    assert runs("outcome=correct:false&metadata=version:3.1") == []
    status, body = call(url, "GET", f"/api/v1/steps?pipeline={pipeline}&outcome=correct:false")
    assert status == 200 and {s["run_id"] for s in body["steps"]} == {wrong}, body
    listed = CliRunner().invoke(
        main, ["runs", "--url", url, "--pipeline", pipeline, "--outcome", "correct=false", "--json"]
    )
    assert [r["run_id"] for r in json.loads(listed.output)["runs"]] == [wrong], listed.output
    bad = call(url, "GET", "/api/v1/runs?outcome=nokey")
    assert bad[0] == 400 and "outcome" in json.dumps(bad[1]), bad


def _finish(correct):
    return [
        step_end(new_id(), 0, "pick", "select"),
        {
            "event_id": new_id(),
            "type": "run_finish",
            "ts": "2026-12-02T00:00:00Z",
            "status": "ok",
            "outcome": {"correct": correct},
        },
    ]


def test_the_cli_says_how_many_match_in_all_and_past_the_bound_says_more_than(xray_server, pipeline, monkeypatch):
    from xray_server.query import steps as step_queries

    url = xray_server.base_url
    for _ in range(3):
        call(url, "POST", "/api/v1/runs", {"run_id": str(uuid.uuid4()), "pipeline": pipeline, "entity": "e"})
    listed = CliRunner().invoke(main, ["runs", "--url", url, "--pipeline", pipeline, "--limit", "2"])
    assert "3 runs match; 2 shown." in listed.output and "--cursor" in listed.output, listed.output
    assert step_queries.total_view(10_001) == {"total": 10_000, "total_is_exact": False}

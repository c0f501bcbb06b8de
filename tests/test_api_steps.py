"""GET /api/v1/steps: the cross-run query, through Flask against real PostgreSQL."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

from tests.support.events import competitor_run, new_id, step_end
from tests.test_api_runs import assert_error, post_json


def send_run(client, pipeline, events, entity="B0CASE", started_at=None):
    body = {"pipeline": pipeline, "entity": entity}
    if started_at:
        body["started_at"] = started_at
    run_id = post_json(client, "/api/v1/runs", body).get_json()["run_id"]
    assert post_json(client, f"/api/v1/runs/{run_id}/events", {"events": events}).status_code == 200
    return run_id


def steps(client, query):
    response = client.get("/api/v1/steps?" + query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_filter_steps_that_dropped_more_than_90_percent(client, pipeline):
    bad = [send_run(client, pipeline, competitor_run(drop_ratio_bad=True), entity=f"bad{i}") for i in range(3)]
    for i in range(2):
        send_run(client, pipeline, competitor_run(drop_ratio_bad=False), entity=f"good{i}")
    found = steps(client, f"pipeline={pipeline}&step_type=filter&min_drop_ratio=0.9&since=24h")["steps"]
    assert sorted(s["run_id"] for s in found) == sorted(bad)
    assert {s["name"] for s in found} == {"compat_filter"}
    assert {s["pipeline"] for s in found} == {pipeline}
    assert {s["entity"] for s in found} == {"bad0", "bad1", "bad2"}
    assert all(s["metrics"]["drop_ratio"] > 0.9 for s in found)


def test_every_filter_combines(client, pipeline):
    send_run(client, pipeline, competitor_run(drop_ratio_bad=True))
    assert len(steps(client, f"pipeline={pipeline}")["steps"]) == 5
    assert len(steps(client, f"pipeline={pipeline}&step_type=filter&step_type=rank")["steps"]) == 2
    assert [s["name"] for s in steps(client, f"pipeline={pipeline}&name=rank_candidates")["steps"]] == [
        "rank_candidates"
    ]
    # The rank step's ratio (12 -> 10) is derived from its counts, like the filter's.
    assert [s["name"] for s in steps(client, f"pipeline={pipeline}&max_drop_ratio=0.5")["steps"]] == ["rank_candidates"]
    assert len(steps(client, f"pipeline={pipeline}&status=ok")["steps"]) == 5
    assert steps(client, f"pipeline={pipeline}&status=error")["steps"] == []
    assert len(steps(client, f"pipeline={pipeline}&violations=false")["steps"]) == 5


def test_time_window_accepts_rfc3339_and_relative_ages(client, pipeline):
    old = datetime.now(UTC) - timedelta(days=3)
    send_run(client, pipeline, competitor_run(base=old), started_at=old.isoformat())
    send_run(client, pipeline, competitor_run())
    assert len(steps(client, f"pipeline={pipeline}&since=24h")["steps"]) == 5
    assert len(steps(client, f"pipeline={pipeline}&since=7d")["steps"]) == 10
    until = (old + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert len(steps(client, f"pipeline={pipeline}&until={until}")["steps"]) == 5


def test_pages_are_newest_first_and_stable_while_new_steps_arrive(client, pipeline):
    run_id = str(uuid.uuid4())
    base = datetime.now(UTC) - timedelta(minutes=10)
    events = [step_end(new_id(), i, f"s{i}", "search", at=(base + timedelta(seconds=i)).isoformat()) for i in range(25)]
    post_json(client, f"/api/v1/runs/{run_id}/events", {"events": events})
    post_json(client, "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    page = steps(client, f"pipeline={pipeline}&limit=10&total=true")
    assert (page["total"], page["total_is_exact"]) == (25, True)
    assert len(page["next_cursor"]) <= 60  # packed: a person can copy it
    names = [s["name"] for s in page["steps"]]
    # A newer step arriving between pages must not shift what the next page holds.
    post_json(client, f"/api/v1/runs/{run_id}/events", {"events": [step_end(new_id(), 99, "late", "search")]})
    while page["next_cursor"]:
        page = steps(client, f"pipeline={pipeline}&limit=10&total=true&cursor={page['next_cursor']}")
        assert page["total"] == 26  # the whole query, the late step included: not what is left
        names += [s["name"] for s in page["steps"]]
    assert names == [f"s{i}" for i in range(24, -1, -1)]


def test_bad_parameters_are_400_naming_them(client):
    assert_error(client.get("/api/v1/steps?min_drop=0.9"), 400, "validation_error", "min_drop")
    assert_error(client.get("/api/v1/steps?step_type=classifier"), 400, "validation_error", "step_type")
    assert_error(client.get("/api/v1/steps?min_drop_ratio=1.5"), 400, "validation_error", "min_drop_ratio")
    assert_error(client.get("/api/v1/steps?min_drop_ratio=nan"), 400, "validation_error", "min_drop_ratio")
    assert_error(client.get("/api/v1/steps?limit=100000"), 400, "validation_error", "limit")
    assert_error(client.get("/api/v1/steps?since=yesterday"), 400, "validation_error", "since")
    assert_error(client.get("/api/v1/steps?since=1h&until=2h"), 400, "validation_error", "since")
    assert_error(client.get("/api/v1/steps?name=a&name=b"), 400, "validation_error", "name")
    assert_error(
        client.get("/api/v1/steps?pipeline=%27;DROP%20TABLE%20steps;--&min_drop_ratio=x"),
        400,
        "validation_error",
        "min_drop_ratio",
    )


def test_tampered_cursors_are_400(client):
    forged = base64.urlsafe_b64encode(json.dumps(["not a time", "x", "y"]).encode()).decode()
    for cursor in ("garbage", forged, "W10", "%00"):
        assert_error(client.get(f"/api/v1/steps?cursor={cursor}"), 400, "validation_error", "cursor")


def test_sql_in_a_parameter_is_just_a_value(client, pipeline):
    send_run(client, pipeline, competitor_run())
    assert steps(client, "pipeline=x%27%20OR%20%271%27=%271")["steps"] == []
    assert len(steps(client, f"pipeline={pipeline}")["steps"]) == 5


def test_stats_give_each_steps_baseline(client, pipeline):
    for bad in (True, False, False, False):
        send_run(client, pipeline, competitor_run(drop_ratio_bad=bad))
    response = client.get(f"/api/v1/steps/stats?pipeline={pipeline}&since=1h")
    assert response.status_code == 200, response.get_json()
    groups = {g["name"]: g for g in response.get_json()["groups"]}
    assert set(groups) == {"generate_keywords", "search_catalogue", "compat_filter", "rank_candidates", "select_best"}
    filt = groups["compat_filter"]
    assert (filt["steps"], filt["runs"], filt["errors"], filt["violations"]) == (4, 4, 0, 0)
    assert filt["drop_ratio"]["p50"] == 0.68  # three good runs (0.68) and one bad (0.994)
    assert filt["drop_ratio"]["p99"] > 0.98
    assert filt["candidates_in"]["p50"] == 2000
    assert filt["duration_ms"]["p50"] == 500
    assert groups["select_best"]["drop_ratio"] is None


def test_stats_parameters_are_validated(client):
    assert_error(client.get("/api/v1/steps/stats?min_drop_ratio=0.9"), 400, "validation_error", "min_drop_ratio")
    assert_error(client.get("/api/v1/steps/stats?since=later"), 400, "validation_error", "since")

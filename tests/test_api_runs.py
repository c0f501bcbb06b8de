"""POST /api/v1/runs, POST /api/v1/runs/<id>/events and GET /api/v1/runs[/<id>] through Flask."""

import gzip
import json
import uuid

from tests.support.events import competitor_run, new_id, step_end, ts


def post_json(client, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert field in error["details"]["fields"], error


def test_create_returns_201_then_200_for_the_same_request(client, pipeline):
    body = {"run_id": str(uuid.uuid4()), "pipeline": pipeline, "entity": "B0CASE"}
    first = post_json(client, "/api/v1/runs", body)
    assert (first.status_code, first.get_json()) == (201, {"run_id": body["run_id"]})
    assert post_json(client, "/api/v1/runs", body).status_code == 200


def test_create_generates_a_run_id_when_none_is_given(client, pipeline):
    response = post_json(client, "/api/v1/runs", {"pipeline": pipeline, "entity": "B0CASE"})
    assert response.status_code == 201
    uuid.UUID(response.get_json()["run_id"])


def test_create_conflict_is_409(client, pipeline):
    body = {"run_id": str(uuid.uuid4()), "pipeline": pipeline, "entity": "B0CASE"}
    post_json(client, "/api/v1/runs", body)
    assert_error(post_json(client, "/api/v1/runs", {**body, "pipeline": "other"}), 409, "conflict")


def test_create_names_missing_and_bad_fields(client):
    response = post_json(client, "/api/v1/runs", {"entity": 5, "run_id": "nope", "surprise": 1})
    assert_error(response, 400, "validation_error")
    fields = response.get_json()["error"]["details"]["fields"]
    assert set(fields) == {"pipeline", "entity", "run_id", "surprise"}


def test_body_must_be_json(client):
    assert_error(
        client.post("/api/v1/runs", data="pipeline=x", content_type="text/plain"), 415, "unsupported_media_type"
    )
    assert_error(client.post("/api/v1/runs", data="{not json", content_type="application/json"), 400, "invalid_json")
    assert_error(
        client.post("/api/v1/runs", data=b'{"pipeline": "\xff"}', content_type="application/json"), 400, "invalid_json"
    )
    assert_error(
        client.post("/api/v1/runs", data='{"pipeline": NaN}', content_type="application/json"), 400, "invalid_json"
    )
    assert_error(post_json(client, "/api/v1/runs", [1, 2]), 400, "validation_error", "body")


def test_nul_characters_are_refused_not_a_500(client):
    response = post_json(client, "/api/v1/runs", {"pipeline": "a\u0000b", "entity": "e"})
    assert_error(response, 400, "validation_error", "pipeline")


def test_events_round_trip_and_the_run_view_shows_steps_in_order(client, pipeline):
    run_id = post_json(client, "/api/v1/runs", {"pipeline": pipeline, "entity": "B0CASE"}).get_json()["run_id"]
    response = post_json(client, f"/api/v1/runs/{run_id}/events", {"events": competitor_run(drop_ratio_bad=True)})
    assert response.status_code == 200
    assert response.get_json()["accepted"] == 11
    view = client.get(f"/api/v1/runs/{run_id}").get_json()
    assert [s["seq"] for s in view["steps"]] == [0, 1, 2, 3, 4]
    assert view["steps"][2]["metrics"]["drop_ratio"] == 0.994
    assert view["summary"] == {"steps": 5, "errors": 0, "running": 0, "contract_violations": 0}


def test_partial_rejection_is_207_with_each_bad_event_named(client, pipeline):
    run_id = str(uuid.uuid4())
    events = [step_end(new_id(), 0, "ok_step", "search"), {"type": "step_end", "event_id": "x"}]
    response = post_json(client, f"/api/v1/runs/{run_id}/events", {"events": events})
    assert response.status_code == 207
    body = response.get_json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert "event_id" in body["rejected"][0]["errors"]


def test_gzip_bodies_are_accepted_and_gzip_bombs_refused(client):
    run_id = str(uuid.uuid4())
    body = gzip.compress(json.dumps({"events": competitor_run()}).encode())
    response = client.post(
        f"/api/v1/runs/{run_id}/events",
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    bomb = gzip.compress(b'{"events": [' + b" " * (20 * 1024 * 1024) + b"]}")
    response = client.post(
        f"/api/v1/runs/{run_id}/events",
        data=bomb,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert_error(response, 413, "payload_too_large")


def test_oversized_bodies_and_batches_are_refused(client):
    run_id = str(uuid.uuid4())
    huge = {"events": [step_end(new_id(), 0, "s", "search", why="x" * (6 * 1024 * 1024))]}
    assert_error(post_json(client, f"/api/v1/runs/{run_id}/events", huge), 413, "payload_too_large")
    many = {"events": [step_end(new_id(), i, "s", "search") for i in range(1001)]}
    assert_error(post_json(client, f"/api/v1/runs/{run_id}/events", many), 400, "validation_error", "events")


def test_timestamps_must_be_rfc3339_with_a_zone_and_near_now(client):
    run_id = str(uuid.uuid4())
    events = [
        step_end(new_id(), 0, "a", "search", at="2026-11-25 10:00"),
        step_end(new_id(), 1, "b", "search", at="2026-11-25T10:00:00"),
        step_end(new_id(), 2, "c", "search", at="1999-01-01T00:00:00Z"),
        step_end(new_id(), 3, "d", "search", at=ts(3 * 86400)),
    ]
    body = post_json(client, f"/api/v1/runs/{run_id}/events", {"events": events}).get_json()
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [(i, ["ts"]) for i in range(4)]


def test_unknown_run_is_404_and_a_bad_run_id_is_400(client):
    assert_error(client.get(f"/api/v1/runs/{uuid.uuid4()}"), 404, "not_found")
    assert_error(client.get("/api/v1/runs/12"), 400, "validation_error", "run_id")
    assert_error(
        post_json(client, "/api/v1/runs/12/events", {"events": competitor_run()}), 400, "validation_error", "run_id"
    )


def test_list_runs_filters_and_paginates(client, pipeline):
    ids = []
    for i in range(5):
        body = {"pipeline": pipeline, "entity": f"B0{i}", "started_at": ts(-100 + i)}
        ids.append(post_json(client, "/api/v1/runs", body).get_json()["run_id"])
    post_json(
        client,
        f"/api/v1/runs/{ids[0]}/events",
        {
            "events": [
                {
                    "event_id": new_id(),
                    "type": "run_finish",
                    "ts": ts(),
                    "status": "error",
                    "error": {"type": "NoCandidates", "message": "filter left nothing"},
                }
            ]
        },
    )
    page = client.get(f"/api/v1/runs?pipeline={pipeline}&limit=2").get_json()
    seen = [r["run_id"] for r in page["runs"]]
    while page["next_cursor"]:
        page = client.get(f"/api/v1/runs?pipeline={pipeline}&limit=2&cursor={page['next_cursor']}").get_json()
        seen += [r["run_id"] for r in page["runs"]]
    assert seen == ids[::-1]
    failed = client.get(f"/api/v1/runs?pipeline={pipeline}&status=error").get_json()["runs"]
    assert [r["run_id"] for r in failed] == [ids[0]]
    assert failed[0]["error"]["type"] == "NoCandidates"
    assert_error(client.get("/api/v1/runs?status=exploded"), 400, "validation_error", "status")

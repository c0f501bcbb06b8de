"""The hostile-input corpus (tests/corpus/hostile_requests.jsonl) sent inside multi-run batches
(`POST /api/v1/batch`): each bad item is refused naming its field, beside valid items of other
runs that are stored; a malformed body is a 4xx naming the field; nothing is ever a 5xx."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from tests.support.events import new_id, step_end
from tests.test_hostile_corpus import BIG_BODIES, CASES, _now
from xray_sdk.ids import new_run_id
from xray_server import query

EVENT_CASES = [case for case in CASES if "json_events" in case]
CREATION_CASES = [case for case in CASES if case["method"] == "POST" and case["path"] == "/api/v1/runs"]
# An events request whose URL names a bad run: in a batch, the same run named by each event.
RUN_ID_CASES = [case for case in CASES if case["name"].startswith("run-id-")]
BODY_CASES = [
    case for case in CASES if case["method"] == "POST" and case not in EVENT_CASES + CREATION_CASES + RUN_ID_CASES
]
# The batch's envelope differs from an events batch's in one way: it may hold runs or labels
# instead of events, so an empty one is named as a whole.
BATCH_FIELD = {"events-missing": "body", "events-empty": "body"}


def test_every_post_of_the_corpus_is_sent_as_a_batch():
    posts = [case for case in CASES if case["method"] == "POST"]
    assert len(EVENT_CASES) + len(CREATION_CASES) + len(RUN_ID_CASES) + len(BODY_CASES) == len(posts) >= 160


def _neighbours(pipeline: str) -> tuple[str, dict, dict]:
    """A valid creation and a valid event of a run of their own."""
    run_id = new_run_id()
    event = {**step_end(new_id(), 0, "kept_step", "search"), "run_id": run_id}
    return run_id, {"run_id": run_id, "pipeline": pipeline, "entity": "kept"}, event


def _post(client, body):
    response = client.post("/api/v1/batch", data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    return response


def _assert_neighbours_kept(db, run_id: str, pipeline: str) -> None:
    view = query.get_run(db, run_id)
    assert (view["pipeline"], [s["name"] for s in view["steps"]]) == (pipeline, ["kept_step"])


@pytest.mark.parametrize("case", EVENT_CASES, ids=[case["name"] for case in EVENT_CASES])
def test_a_hostile_event_is_refused_alone_naming_its_field(client, db, pipeline, case):
    run_id, run, kept = _neighbours(pipeline)
    [bad] = _now(case["json_events"])
    bad = {**bad, "run_id": new_run_id()} if isinstance(bad, dict) else bad
    response = _post(client, {"runs": [run], "events": [kept, bad, {**kept, "event_id": new_id()}]})
    assert response.status_code == 207, response.get_json()
    answer = response.get_json()
    assert (answer["runs"]["created"], answer["events"]["accepted"]) == (1, 2)
    [rejected] = answer["events"]["rejected"]
    assert (rejected["index"], rejected["code"]) == (1, "validation_error")
    assert case["field"] in rejected["errors"], rejected
    _assert_neighbours_kept(db, run_id, pipeline)


@pytest.mark.parametrize("case", CREATION_CASES, ids=[case["name"] for case in CREATION_CASES])
def test_a_hostile_creation_is_refused_alone_naming_its_field(client, db, pipeline, case):
    run_id, run, kept = _neighbours(pipeline)
    bad = json.loads(case["body"])
    bad.setdefault("run_id", new_run_id())  # a batch's creations name their run
    response = _post(client, {"runs": [run, bad], "events": [kept]})
    assert response.status_code == 207, response.get_json()
    answer = response.get_json()
    [rejected] = answer["runs"]["rejected"]
    assert (rejected["index"], rejected["code"]) == (1, "validation_error")
    assert case["field"] in rejected["errors"], rejected
    assert (answer["runs"]["created"], answer["events"]["accepted"]) == (1, 1)
    _assert_neighbours_kept(db, run_id, pipeline)


@pytest.mark.parametrize("case", RUN_ID_CASES, ids=[case["name"] for case in RUN_ID_CASES])
def test_an_event_naming_a_hostile_run_id_is_refused_alone(client, db, pipeline, case):
    run_id, run, kept = _neighbours(pipeline)
    hostile = urllib.parse.unquote(case["path"].split("/")[4])
    events = [{**event, "run_id": hostile} for event in _now(json.loads(case["body"]))["events"]]
    response = _post(client, {"runs": [run], "events": [kept, *events]})
    assert response.status_code == 207, response.get_json()
    answer = response.get_json()
    assert [r["index"] for r in answer["events"]["rejected"]] == list(range(1, len(events) + 1))
    assert all(r["errors"] == {"run_id": ["Not a valid UUID."]} for r in answer["events"]["rejected"])
    assert answer["events"]["accepted"] == 1
    _assert_neighbours_kept(db, run_id, pipeline)


@pytest.mark.parametrize("case", BODY_CASES, ids=[case["name"] for case in BODY_CASES])
def test_a_hostile_body_is_a_4xx_naming_the_field(client, case):
    if case.get("body_b64"):
        data = base64.b64decode(case["body_b64"])
    else:
        data = BIG_BODIES.get(case["body"], case["body"]).encode()
    response = client.post(
        "/api/v1/batch", data=data, headers=case.get("headers") or {}, content_type=case.get("content_type") or None
    )
    assert response.status_code == case["status"], response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["message"]
    named = set(error.get("details", {}).get("fields", {})) | {error["code"]}
    assert BATCH_FIELD.get(case["name"], case["field"]) in named, error

"""Every request in tests/corpus/hostile_requests.jsonl gets the 4xx JSON error it must, naming
the field; none gets a 5xx; a valid event beside a bad one is kept."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.events import new_id, step_end

CORPUS = Path(__file__).with_name("corpus") / "hostile_requests.jsonl"
CASES = [json.loads(line) for line in CORPUS.read_text().splitlines()]
BIG_BODIES = {
    "__DEEP__": "[" * 100_000 + "]" * 100_000,
    "__OVERSIZED__": '{"events": ["' + "x" * (6 * 1024 * 1024) + '"]}',
}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 200
    assert len({case["name"] for case in CASES}) == len(CASES)


def _now(value):
    text = json.dumps(value).replace("__NOW__", datetime.now(UTC).isoformat())
    return json.loads(text)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_hostile_request_gets_a_clear_4xx(client, case):
    if "json_events" in case:
        valid = step_end(new_id(), 0, "kept_step", "search")
        body = json.dumps({"events": [valid, *_now(case["json_events"])]})
        response = client.post(case["path"], data=body, content_type="application/json")
        assert response.status_code == case["status"], response.get_json()
        result = response.get_json()
        assert result["accepted"] == 1  # the valid event beside the bad one is kept
        [rejected] = result["rejected"]
        assert rejected["index"] == 1
        assert case["field"] in rejected["errors"], rejected
        return
    if case["method"] == "GET":
        response = client.get(case["path"])
    else:
        data = (
            base64.b64decode(case["body_b64"])
            if case.get("body_b64")
            else BIG_BODIES.get(case["body"], case["body"]).encode("utf-8")
        )
        response = client.post(
            case["path"], data=data, headers=case.get("headers") or {}, content_type=case.get("content_type") or None
        )
    assert response.status_code == case["status"], response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["message"]
    named = set(error.get("details", {}).get("fields", {})) | {error["code"]}
    assert case["field"] in named, error

"""Inputs that once turned into 500s: each must be a 4xx naming the field, and valid events
beside them must be kept."""

import gzip
import json
import uuid

import pytest

from tests.support.events import new_id, step_end
from tests.test_api_runs import assert_error, post_json


def post_events(client, events):
    return post_json(client, f"/api/v1/runs/{uuid.uuid4()}/events", {"events": events})


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"artifacts": [{"name": "a", "ref": {"key": "k", "size_bytes": 2**63}}]}, "artifacts"),
        ({"artifacts": [{"name": "a", "ref": {"key": "k", "sha256": "a" * 64 + "\n"}}]}, "artifacts"),
        ({"metrics": {"temperature": 10**400}}, "metrics.temperature"),
        ({"metrics": {"drop_ratio": 10**400}}, "metrics.drop_ratio"),
        ({"metrics": {"x": "a\u0000b"}}, "metrics.x"),
        ({"metrics": {"model": "a\u0000b"}}, "metrics.model"),
        ({"metrics": {"x": "\ud800"}}, "metrics.x"),
        ({"metrics": {"a\n": 1}}, "metrics.a\n"),
        ({"type": ["step_end"]}, "type"),
        ({"type": {}}, "type"),
        # A key with a lone surrogate is echoed in the error: the answer must still be encodable.
        ({"\ud800": 1}, "\ud800"),
        # Past 64 bits, negative: must stay an integer (orjson would read a float) and be refused.
        ({"metrics": {"x": -9300000000000000000}}, "metrics.x"),
    ],
)
def test_bad_event_is_rejected_alone_and_its_neighbours_kept(client, bad, field):
    good = step_end(new_id(), 0, "kept", "search")
    response = post_events(client, [good, {**step_end(new_id(), 1, "bad", "filter"), **bad}])
    assert response.status_code == 207, response.get_json()
    body = response.get_json()
    assert body["accepted"] == 1
    assert field in body["rejected"][0]["errors"]


def test_a_null_event_is_rejected_alone(client):
    response = post_events(client, [None, step_end(new_id(), 0, "kept", "search")])
    assert response.status_code == 207
    assert response.get_json()["accepted"] == 1


def test_integers_too_long_to_parse_are_a_400(client):
    body = '{"events": [{"seq": ' + "9" * 5000 + "}]}"
    response = client.post(f"/api/v1/runs/{uuid.uuid4()}/events", data=body, content_type="application/json")
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "url, field",
    [
        ("/api/v1/steps?since=999999w", "since"),
        ("/api/v1/steps?since=999999d", "since"),
        ("/api/v1/runs?until=999999d", "until"),
        ("/api/v1/steps?since=60000w", "since"),
    ],
)
def test_relative_times_out_of_range_are_a_400(client, url, field):
    assert_error(client.get(url), 400, "validation_error", field)


def test_data_after_the_gzip_member_is_refused(client):
    body = gzip.compress(json.dumps({"events": [step_end(new_id(), 0, "s", "search")]}).encode()) + b"junk"
    response = client.post(
        f"/api/v1/runs/{uuid.uuid4()}/events",
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert_error(response, 400, "invalid_json")

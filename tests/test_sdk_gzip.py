"""The SDK compresses what it sends to another machine and not what it sends to this one (gzip
pays on a link slower than about 140 MB/s, and costs four times the CPU of the plain body on
loopback: `bench sdk_delivery`); whichever it chooses, the real server stores the same."""

import json
import uuid

import pytest

from xray_sdk.delivery.transport import GZIP_MIN_BYTES, HttpTransport, is_loopback


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.10:8000", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8000", True),
        ("http://10.0.0.7:8000", False),
        ("https://xray.example.com", False),
        ("http://[2001:db8::1]:8000", False),
        ("http://localhost.example.com", False),
    ],
)
def test_bodies_are_compressed_only_for_another_machine(endpoint, loopback):
    transport = HttpTransport(endpoint)
    assert is_loopback(transport._host) is loopback
    assert transport.gzip_min_bytes == (None if loopback else GZIP_MIN_BYTES)
    # A setting of one's own wins either way.
    assert HttpTransport(endpoint, gzip_min_bytes=10).gzip_min_bytes == 10


def _events(run_id: str) -> bytes:
    step = str(uuid.uuid4())
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "step_end",
        "ts": "2026-12-02T10:00:00Z",
        "step_id": step,
        "seq": 0,
        "name": "compat_filter",
        "step_type": "filter",
        "status": "ok",
        "metrics": {"candidates_in": 2000, "candidates_out": 40, "drop_ratio": 0.98},
        "why": "kept same-category candidates " * 40,  # past GZIP_MIN_BYTES, within the bound on a why
    }
    return json.dumps({"runs": [], "events": [{"run_id": run_id, **event}], "labels": []}).encode()


@pytest.mark.parametrize("gzip_min_bytes", [None, GZIP_MIN_BYTES])
def test_the_server_stores_a_body_sent_plain_or_compressed(xray_server, db, gzip_min_bytes):
    transport = HttpTransport(xray_server.base_url, gzip_min_bytes=gzip_min_bytes)
    run_id = str(uuid.uuid4())
    body = _events(run_id)
    assert len(body) >= GZIP_MIN_BYTES
    response = transport.post("/api/v1/batch", body)
    transport.close()
    assert response.status == 200, response.body
    assert response.body["events"]["accepted"] == 1
    with db.connection() as conn:
        row = conn.execute("SELECT why FROM steps WHERE run_id = %s", (run_id,)).fetchone()
    assert row["why"] == json.loads(body)["events"][0]["why"]


def test_a_client_chooses_gzip_by_its_endpoint_unless_told(sdk_client):
    assert sdk_client("http://127.0.0.1:9")._delivery.transport.gzip_min_bytes is None
    assert sdk_client("http://10.0.0.7:9")._delivery.transport.gzip_min_bytes == GZIP_MIN_BYTES
    # A loopback address that is a tunnel to another machine: the setting wins.
    tunnel = sdk_client("http://127.0.0.1:9", gzip_min_bytes=GZIP_MIN_BYTES)
    assert tunnel._delivery.transport.gzip_min_bytes == GZIP_MIN_BYTES

"""explain on stored runs: a run is held to the runs that started before it (its verdict never
changes as later runs arrive), runs judged bad stay out of every baseline, and the answer is the
one the OpenAPI document describes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.events import new_id, step_end
from tests.support.openapi import conforms
from xray_server.analysis.explain import explain_stored_run

START = datetime(2026, 11, 1, tzinfo=UTC)


def record(client, pipeline, minute, kept):
    """A run at `START + minute`: a search of 1000, then a filter that keeps `kept`."""
    run_id, at = new_id(), START + timedelta(minutes=minute)
    client.post(
        "/api/v1/runs", json={"run_id": run_id, "pipeline": pipeline, "entity": "e", "started_at": at.isoformat()}
    )
    stamp = (at + timedelta(seconds=1)).isoformat()
    events = [
        step_end(new_id(), 0, "search", "search", at=stamp, metrics={"candidates_in": 1, "candidates_out": 1000}),
        step_end(new_id(), 1, "keep", "filter", at=stamp, metrics={"candidates_in": 1000, "candidates_out": kept}),
    ]
    answer = client.post(f"/api/v1/runs/{run_id}/events", json={"events": events})
    assert answer.status_code in (200, 207), answer.get_json()
    return run_id


def usual_kept(i):
    return 700 + (i * 37) % 100


def test_a_verdict_does_not_change_as_later_runs_arrive(client, db, pipeline):
    for i in range(60):
        record(client, pipeline, i, usual_kept(i))
    bad = record(client, pipeline, 60, 20)
    before = explain_stored_run(db, bad)
    assert before["cause"] is not None and before["cause"]["step"] == "keep"
    # Forty later runs share the bad one's drop: against them it would be usual.
    for i in range(40):
        record(client, pipeline, 61 + i, 20)
    after = explain_stored_run(db, bad)
    assert after == before


def test_runs_judged_bad_stay_out_of_the_baseline(client, db, pipeline):
    for i in range(60):
        record(client, pipeline, 2 * i, usual_kept(i))
        judged = record(client, pipeline, 2 * i + 1, 20)
        client.post(f"/api/v1/runs/{judged}/labels", json={"label": "bad", "source": "review"})
    bad = record(client, pipeline, 120, 20)
    answer = explain_stored_run(db, bad)
    assert answer["baseline"]["runs"] == 60
    assert answer["cause"] is not None and answer["cause"]["step"] == "keep"


def test_the_answer_is_the_one_the_openapi_document_describes(client, pipeline):
    for i in range(55):
        record(client, pipeline, i, usual_kept(i))
    bad = record(client, pipeline, 55, 20)
    answer = client.get(f"/api/v1/runs/{bad}/explain").get_json()
    components = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    assert answer["symptom"] is not None and answer["cause"] is not None and answer["findings"]
    assert conforms(answer, components["Explain"], components), answer

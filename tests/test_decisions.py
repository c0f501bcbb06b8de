"""Candidate-level evidence: exact counts as metrics, stratified samples as artifacts."""

import uuid

import pytest

from tests.support.events import new_id, step_end
from tests.test_api_runs import assert_error, post_json
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.decisions import Decisions


def test_counts_are_exact_whatever_the_sample_size():
    d = Decisions(DEFAULT_LIMITS, keep_all=False)
    for i in range(10_000):
        d.keep(i) if i % 100 == 0 else d.reject(i, "rare" if i % 1000 == 1 else "common")
    assert (d.kept, d.rejected) == (100, 9_900)
    assert d.reason_counts() == {"common": 9_890, "rare": 10}
    assert len(d.kept_sample) == DEFAULT_LIMITS.kept_sample_size


def test_stratified_samples_contain_every_reason():
    d = Decisions(DEFAULT_LIMITS, keep_all=False)
    for i in range(1000):
        d.reject(i, "common")
    d.reject("needle", "rare")
    sample = d.rejected_sample()
    assert {s["reason"] for s in sample} == {"common", "rare"}
    assert {"reason": "rare", "candidate": "needle"} in sample
    assert sum(s["reason"] == "common" for s in sample) == DEFAULT_LIMITS.rejected_sample_per_reason


def test_reasons_past_the_cap_fold_into_other_and_are_bounded():
    d = Decisions(DEFAULT_LIMITS, keep_all=False)
    for r in range(30):
        for _ in range(30 - r):
            d.reject(r, f"reason_{r:02d}")
    d.reject(0, "x" * 500)
    counts = d.reason_counts()
    assert len(counts) == DEFAULT_LIMITS.max_reasons + 1 and "other" in counts
    assert sum(counts.values()) == d.rejected
    assert all(len(reason) <= DEFAULT_LIMITS.max_reason_chars for reason in d.counts)


def test_full_capture_keeps_the_complete_rejected_list(server, sdk_client):
    client = sdk_client(server.url, capture="full")
    with client.start_run("p", "e") as run, run.step("f", "filter") as step:
        step.decide(range(5), ((i, "too_far") for i in range(5, 100)))
    assert client.flush(5)
    end = next(e for e in server.events if e["type"] == "step_end")
    assert end["metrics"] == {"candidates_in": 100, "candidates_out": 5, "drop_ratio": 0.95}
    assert end["rejections"] == {"too_far": 95}
    artifacts = {a["name"]: a for a in end["artifacts"]}
    assert len(artifacts["rejected_all"]["payload"]) == 95
    assert len(artifacts["rejected_sample"]["payload"]) == DEFAULT_LIMITS.rejected_sample_per_reason


def send_filter(client, pipeline, cin, cout, rejections):
    run_id = str(uuid.uuid4())
    post_json(client, "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    event = step_end(
        new_id(),
        0,
        "compat_filter",
        "filter",
        metrics={"candidates_in": cin, "candidates_out": cout},
        rejections=rejections,
    )
    response = post_json(client, f"/api/v1/runs/{run_id}/events", {"events": [event]})
    return run_id, response


def test_rejection_counts_are_stored_and_queryable_across_runs(client, pipeline):
    bad, _ = send_filter(client, pipeline, 1000, 10, {"category_mismatch": 970, "price_out_of_band": 20})
    good, _ = send_filter(client, pipeline, 1000, 600, {"category_mismatch": 40, "price_out_of_band": 360})
    page = client.get(f"/api/v1/steps?pipeline={pipeline}&reason=category_mismatch&min_reason_share=0.5").get_json()
    assert [s["run_id"] for s in page["steps"]] == [bad]
    assert page["steps"][0]["rejections"] == {"category_mismatch": 970, "price_out_of_band": 20}
    both = client.get(f"/api/v1/steps?pipeline={pipeline}&reason=category_mismatch").get_json()["steps"]
    assert {s["run_id"] for s in both} == {bad, good}
    reasons = client.get(f"/api/v1/steps/reasons?pipeline={pipeline}&name=compat_filter").get_json()
    assert reasons["steps"] == 2
    top = {r["reason"]: r for r in reasons["reasons"]}
    assert top["category_mismatch"]["total"] == 1010 and top["category_mismatch"]["steps"] == 2
    assert top["category_mismatch"]["median_share"] == pytest.approx((0.97 + 0.04) / 2)
    assert reasons["reasons"][0]["reason"] == "category_mismatch"


def test_rejections_that_do_not_add_up_are_refused(client, pipeline):
    _, response = send_filter(client, pipeline, 100, 90, {"category_mismatch": 50})
    assert response.status_code == 207
    assert "rejections" in response.get_json()["rejected"][0]["errors"]
    _, response = send_filter(client, pipeline, 100, 10, {"": 5})
    assert "rejections" in response.get_json()["rejected"][0]["errors"]
    assert_error(client.get("/api/v1/steps?min_reason_share=0.5"), 400, "validation_error", "min_reason_share")

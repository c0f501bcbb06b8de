"""`xray why-dropped` answers its three cases against a real server: dropped (with the step
and reason), kept, and not in the evidence (with the capture level that would have kept it)."""

import json

from click.testing import CliRunner

from tests.support.clients import REAL_SERVER_TIMEOUT
from xray_cli import main


def run_pipeline(make_client, server, pipeline, capture, id_key="asin", id_field="asin"):
    client = make_client(server.base_url, capture=capture, timeout=REAL_SERVER_TIMEOUT)
    candidates = [{id_key: f"B{i:04d}", "category": "phone_case" if i < 50 else "laptop_stand"} for i in range(200)]
    with client.start_run(pipeline, "B0CASE") as run:
        with run.step("compat_filter", "filter", id_field=id_field) as step:
            step.decide(
                [c for c in candidates if c["category"] == "laptop_stand"],
                [(c, "category_not_compatible") for c in candidates if c["category"] == "phone_case"],
            )
    assert client.flush(10)
    return run.run_id


def why(server, run_id, candidate_id):
    result = CliRunner().invoke(main, ["why-dropped", "--url", server.base_url, run_id, candidate_id, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_sampled_rejection_is_found_with_its_step_and_reason(xray_server, pipeline, sdk_client):
    run_id = run_pipeline(sdk_client, xray_server, pipeline, "sample")
    answer = why(xray_server, run_id, "B0000")  # the first rejected: in the per-reason sample
    assert answer["found"]["step"] == "compat_filter"
    assert answer["found"]["reason"] == "category_not_compatible"
    text = CliRunner().invoke(main, ["why-dropped", "--url", xray_server.base_url, run_id, "B0000"]).output
    assert "Step 0 'compat_filter' dropped B0000: reason 'category_not_compatible'" in text


def test_a_kept_candidate_is_said_to_be_kept(xray_server, pipeline, sdk_client):
    run_id = run_pipeline(sdk_client, xray_server, pipeline, "sample")
    answer = why(xray_server, run_id, "B0050")  # the first kept: in the kept sample
    assert answer["found"] is None and answer["kept_by"] == ["compat_filter"]


def test_a_candidate_outside_the_sample_says_which_capture_would_have_kept_it(xray_server, pipeline, sdk_client):
    run_id = run_pipeline(sdk_client, xray_server, pipeline, "sample")
    answer = why(xray_server, run_id, "B0049")
    assert answer["found"] is None
    unknown = answer["unknown_at"][0]
    assert unknown["rejections"] == {"category_not_compatible": 50}
    assert "capture 'full'" in unknown["advice"]
    full_run = run_pipeline(sdk_client, xray_server, pipeline, "full")
    assert why(xray_server, full_run, "B0049")["found"]["evidence"] == "rejected_all"


def test_a_candidate_is_found_by_a_common_id_field_when_the_step_named_none(xray_server, pipeline, sdk_client):
    run_id = run_pipeline(sdk_client, xray_server, pipeline, "sample", id_key="rec_id", id_field=None)
    assert why(xray_server, run_id, "B0000")["found"]["reason"] == "category_not_compatible"
    assert why(xray_server, run_id, "B0050")["kept_by"] == ["compat_filter"]


def test_a_field_that_is_not_an_id_by_name_needs_the_step_to_say_so(xray_server, pipeline, sdk_client):
    unnamed = run_pipeline(sdk_client, xray_server, pipeline, "sample", id_field=None)
    assert why(xray_server, unnamed, "B0000")["found"] is None  # `asin` is no common id name
    named = run_pipeline(sdk_client, xray_server, pipeline, "sample")
    assert why(xray_server, named, "B0000")["found"]["evidence"] == "rejected_sample"


def test_a_candidate_lost_upstream_is_said_to_be_lost_there_not_at_a_later_filter(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, capture="sample", timeout=REAL_SERVER_TIMEOUT)
    catalogue = [{"rec_id": f"R{i}", "state": "vic" if i % 2 else "nsw"} for i in range(200)]
    with client.start_run(pipeline, "R7") as run:
        with run.step("block", "search") as step:
            found = [r for r in catalogue if r["state"] == "nsw"][:8]  # the block never returns R7 (vic)
            step.candidates(1, found)
        with run.step("threshold", "filter", id_field="rec_id") as step:
            step.decide(found[:3], [(r, "score_below_threshold") for r in found[3:]])
    assert client.flush(10)
    answer = why(xray_server, run.run_id, "R7")
    assert answer["found"] is None and answer["unknown_at"] == []
    assert answer["lost_upstream"] == {"step": "threshold", "seq": 1, "candidates_in": 8, "earlier_steps": ["block"]}
    text = CliRunner().invoke(main, ["why-dropped", "--url", xray_server.base_url, run.run_id, "R7"]).output
    assert "R7 never reached step 1 'threshold'" in text and "lost upstream" in text


def test_at_the_default_capture_the_sampled_ids_answer_and_without_ids_the_level_is_named(
    xray_server, pipeline, sdk_client
):
    run_id = run_pipeline(sdk_client, xray_server, pipeline, "summary")
    found = why(xray_server, run_id, "B0001")["found"]  # in the per-reason sample: its id was kept
    assert found["step"] == "compat_filter" and found["reason"] == "category_not_compatible", found
    assert found["candidate"] is None  # the default level keeps ids, never the candidates themselves
    assert why(xray_server, run_id, "B0050")["kept_by"] == ["compat_filter"]

    without_ids = run_pipeline(sdk_client, xray_server, pipeline, "summary", id_field=None)
    unknown = why(xray_server, without_ids, "B0001")["unknown_at"][0]
    assert "capture 'sample' would have kept it" in unknown["advice"], unknown
    assert "id_field=" in unknown["advice"]

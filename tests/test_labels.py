"""Run labels: a judgement that arrives after the run, idempotent, the latest per source winning
whatever the order, shown in the run view and usable as a filter on /runs and /steps."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.support.events import new_id, step_end, ts
from xray_cli import main


def new_run(client, pipeline):
    run_id = new_id()
    client.post("/api/v1/runs", json={"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    client.post(f"/api/v1/runs/{run_id}/events", json={"events": [step_end(new_id(), 0, "s", "select")]})
    return run_id


def label(client, run_id, **body):
    answer = client.post(f"/api/v1/runs/{run_id}/labels", json=body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_latest_judgement_of_each_source_wins_in_any_order(client, pipeline):
    run_id = new_run(client, pipeline)
    label(client, run_id, label="bad", source="review", at=ts(-10), comment="wrong match")
    label(client, run_id, label="good", source="review", at=ts(-60))  # older: loses though it arrives later
    label(client, run_id, label="good", source="check")
    again = label(client, run_id, label="good", source="check")  # a repeat changes nothing
    assert again["label"] == "good" and again["run_known"] is True
    view = client.get(f"/api/v1/runs/{run_id}").get_json()
    assert {(lbl["source"], lbl["label"]) for lbl in view["labels"]} == {("review", "bad"), ("check", "good")}
    assert next(lbl for lbl in view["labels"] if lbl["source"] == "review")["comment"] == "wrong match"


def test_labels_filter_runs_and_steps(client, pipeline):
    bad, good = new_run(client, pipeline), new_run(client, pipeline)
    label(client, bad, label="bad")
    label(client, good, label="good", source="check")
    runs = client.get(f"/api/v1/runs?pipeline={pipeline}&label=bad").get_json()["runs"]
    assert [r["run_id"] for r in runs] == [bad]
    steps = client.get(f"/api/v1/steps?pipeline={pipeline}&run_label=good").get_json()["steps"]
    assert [s["run_id"] for s in steps] == [good]


def test_a_label_for_an_unknown_run_is_kept_and_said_so_and_a_bad_body_names_the_field(client):
    assert label(client, new_id(), label="bad")["run_known"] is False
    answer = client.post(f"/api/v1/runs/{new_id()}/labels", json={"source": "review"})
    assert answer.status_code == 400
    assert "label" in answer.get_json()["error"]["details"]["fields"]


def test_the_cli_labels_a_run_and_shows_it(xray_server, pipeline):
    from tests.support.http import call

    run_id = new_id()
    call(xray_server.base_url, "POST", "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    result = CliRunner().invoke(
        main, ["label", run_id, "bad", "--source", "review", "--comment", "laptop stand", "--url", xray_server.base_url]
    )
    assert result.exit_code == 0, result.output
    assert f"run {run_id} labelled bad by review" in result.output
    shown = CliRunner().invoke(main, ["show", run_id, "--url", xray_server.base_url]).output
    assert "labelled bad by review" in shown and "laptop stand" in shown
    listed = json.loads(
        CliRunner()
        .invoke(main, ["runs", "--pipeline", pipeline, "--label", "bad", "--json", "--url", xray_server.base_url])
        .output
    )
    assert [r["run_id"] for r in listed["runs"]] == [run_id]


def test_the_sdk_labels_a_run_through_its_delivery(xray_server, pipeline, sdk_client):
    from tests.support.clients import REAL_SERVER_TIMEOUT
    from tests.support.http import call

    client = sdk_client(xray_server.base_url, timeout=REAL_SERVER_TIMEOUT)
    with client.start_run(pipeline, "e") as run:
        with run.step("s", "select") as step:
            step.candidates(3, 1)
    client.label(run.run_id, "bad", source="review", comment="a laptop stand")
    assert client.flush(10)
    assert client.stats()["dropped_total"] == 0
    status, view = call(xray_server.base_url, "GET", f"/api/v1/runs/{run.run_id}")
    assert status == 200
    assert [(lbl["source"], lbl["label"], lbl["comment"]) for lbl in view["labels"]] == [
        ("review", "bad", "a laptop stand")
    ]


def test_a_judgement_may_be_a_number_and_many_runs_are_judged_in_one_request(client, pipeline):
    runs = [new_run(client, pipeline) for _ in range(3)]
    one = label(client, runs[0], label="review", value=2, source="alice")
    assert one["value"] == 2.0
    answer = client.post(
        "/api/v1/labels",
        json={
            "labels": [
                {"run_id": runs[1], "label": "bad", "value": 0.3},
                {"run_id": "not-a-run-id", "label": "bad"},  # refused alone: its neighbours are kept
                {"run_id": runs[2], "label": "bad", "value": "high"},
                {"run_id": runs[2], "label": "good"},
            ]
        },
    )
    assert answer.status_code == 207, answer.get_json()
    body = answer.get_json()
    assert (body["recorded"], body["refused"]) == (2, 2)
    assert [(e["index"], sorted(e["fields"])) for e in body["errors"]] == [(1, ["run_id"]), (2, ["value"])]
    listed = {r["run_id"]: r["labels"] for r in client.get(f"/api/v1/runs?pipeline={pipeline}").get_json()["runs"]}
    assert [(j["label"], j["value"]) for j in listed[runs[0]]] == [("review", 2.0)]
    assert [(j["label"], j["value"]) for j in listed[runs[1]]] == [("bad", 0.3)]
    assert [(j["label"], j["value"]) for j in listed[runs[2]]] == [("good", None)]
    assert client.post("/api/v1/labels", json={"labels": []}).status_code == 400


def test_the_cli_labels_many_runs_from_standard_input_and_runs_shows_the_labels(xray_server, pipeline):
    from tests.support.http import call

    run_ids = [new_id() for _ in range(3)]
    for run_id in run_ids:
        call(xray_server.base_url, "POST", "/api/v1/runs", {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    url = xray_server.base_url
    result = CliRunner().invoke(
        main, ["label", "--url", url, "--from", "-", "--value", "1", "bad"], input="\n".join(run_ids[:2]) + "\n"
    )
    assert result.exit_code == 0 and "2 runs labelled bad; 0 refused" in result.output, result.output
    listed = CliRunner().invoke(main, ["runs", "--url", url, "--pipeline", pipeline])
    # The labels column alone: a random pipeline name may itself contain "bad".
    header = listed.output.splitlines()[0].split()
    labels = {
        cols[0]: cols[header.index("labels")]
        for cols in map(str.split, listed.output.splitlines())
        if cols and cols[0] in run_ids
    }
    assert labels == {run_ids[0]: "bad=1", run_ids[1]: "bad=1", run_ids[2]: "-"}, listed.output

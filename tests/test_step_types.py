"""A step type that is none of the fixed ones: in best_effort it is stored as `custom` with the
contract violation `unknown_step_type:<given>`, warned once, and found again by `violation=`,
`xray steps`, `xray show` and `explain`; a raw client's wrong type is still a 400 naming the field."""

import json
import urllib.request
import warnings

from click.testing import CliRunner

from tests.support.clients import REAL_SERVER_TIMEOUT
from xray_cli import main
from xray_sdk import XRayContractWarning


def test_a_typo_in_a_step_type_is_sent_as_custom_with_what_was_given_and_warned_once(server, sdk_client):
    client = sdk_client(server.url, mode="best_effort")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with client.start_run("p", "e") as run:
            for i in range(3):
                with run.step(f"f{i}", "fitler-once-a") as step:
                    step.candidates(10, 4)
    assert client.flush(5)
    ends = [e for e in server.events if e["type"] == "step_end"]
    assert {e["step_type"] for e in ends} == {"custom"}
    assert {e["declared_type"] for e in ends} == {"fitler-once-a"}
    said = [w for w in caught if issubclass(w.category, XRayContractWarning)]
    assert len(said) == 1 and "fitler-once-a" in str(said[0].message), [str(w.message) for w in caught]


def test_the_stored_step_carries_the_violation_and_every_reader_shows_it(xray_server, pipeline, sdk_client):
    client = sdk_client(xray_server.base_url, timeout=REAL_SERVER_TIMEOUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XRayContractWarning)
        with client.start_run(pipeline, "ticket-1") as run:
            with run.step("skills", "fitler") as step:
                step.candidates(10, 4)
            with run.step("route", "select") as step:
                step.candidates(4, 1)
    assert client.flush(10)

    view = json.load(urllib.request.urlopen(f"{xray_server.base_url}/api/v1/runs/{run.run_id}"))
    skills = view["steps"][0]
    assert skills["step_type"] == "custom"
    assert skills["contract_violations"] == ["unknown_step_type:fitler"]

    def steps(**query):
        url = f"{xray_server.base_url}/api/v1/steps?pipeline={pipeline}&" + urllib.parse.urlencode(query)
        return [s["name"] for s in json.load(urllib.request.urlopen(url))["steps"]]

    assert steps(violation="unknown_step_type") == ["skills"]
    assert steps(violation="unknown_step_type:fitler") == ["skills"]
    assert steps(violation="unknown_step_type:filter") == []
    assert steps(violation="missing_metric") == []

    cli = CliRunner()
    listed = cli.invoke(
        main, ["steps", "--url", xray_server.base_url, "--pipeline", pipeline, "--violation", "unknown_step_type"]
    )
    assert listed.exit_code == 0 and "skills" in listed.output and "route" not in listed.output, listed.output
    shown = cli.invoke(main, ["show", "--url", xray_server.base_url, run.run_id])
    assert shown.exit_code == 0 and "unknown_step_type:fitler" in shown.output, shown.output

    explained = json.load(urllib.request.urlopen(f"{xray_server.base_url}/api/v1/runs/{run.run_id}/explain"))
    messages = [f["message"] for f in explained["findings"]]
    assert any("'fitler'" in m and "stored as 'custom'" in m for m in messages), messages


def test_a_raw_client_sending_an_unknown_type_gets_a_400_that_names_the_field(client):
    event = {
        "event_id": "00000000-0000-4000-8000-000000000001",
        "type": "step_end",
        "ts": "2026-12-02T00:00:00Z",
        "step_id": "00000000-0000-4000-8000-000000000002",
        "seq": 0,
        "name": "skills",
        "step_type": "fitler",
        "status": "ok",
    }
    reply = client.post("/api/v1/runs/00000000-0000-4000-8000-000000000003/events", json={"events": [event]})
    assert reply.status_code in (207, 400), reply.get_data(as_text=True)
    assert "step_type" in reply.get_data(as_text=True)

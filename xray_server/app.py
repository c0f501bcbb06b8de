"""The Flask application factory."""
from __future__ import annotations

import logging
import threading
import time

import psycopg
from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider

from xray_sdk.limits import DEFAULT_LIMITS

from . import errors, jsonio
from .config import ConfigError, Settings, load_settings
from .db import Database, connection_kwargs
from .artifact_writer import ArtifactWriter, resolve_stale_pending
from .migrations import migrate
from .stores import ArtifactStore, LocalDirStore, S3Store

log = logging.getLogger(__name__)


class FastJsonProvider(DefaultJSONProvider):
    """Responses encoded by orjson: a page of 100 steps in a tenth of json.dumps's time.
    Views return JSON-ready values (strings, numbers, lists, dicts), keys in their order."""

    sort_keys = False

    def dumps(self, obj, **kwargs) -> str:  # type: ignore[no-untyped-def]
        return jsonio.dumps(obj, self.default).decode("utf-8")

    def response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(jsonio.dumps(obj, self.default), mimetype=self.mimetype)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Flask:
    """Build the API. Without `database`, open a pool to `settings.database_url`."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_LIMITS.max_body_bytes
    app.json = FastJsonProvider(app)
    errors.init_app(app, settings.retry_after_seconds)
    db = database or open_database(settings)
    store = open_store(settings)
    app.extensions["xray.db"] = db
    app.extensions["xray.settings"] = settings
    app.extensions["xray.store"] = store
    app.extensions["xray.writer"] = ArtifactWriter(
        store, budget_ms=settings.artifact_budget_ms, budget_bytes=settings.artifact_budget_bytes,
        concurrency=settings.artifact_concurrency)
    if settings.artifact_sweep_seconds > 0:
        start_pending_sweeper(db, store, settings.artifact_sweep_seconds)

    from .api import artifacts, health, openapi, runs, steps

    for blueprint in (health.bp, runs.bp, steps.bp, artifacts.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app


def open_store(settings: Settings) -> ArtifactStore:
    """The S3 store when XRAY_S3_ENDPOINT is set, else the local folder."""
    if settings.s3_endpoint:
        return S3Store(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                       secure=settings.s3_secure, timeout=settings.artifact_timeout)
    return LocalDirStore(settings.artifacts_dir)


def start_pending_sweeper(db: Database, store: ArtifactStore, every_seconds: float = 60.0) -> threading.Thread:
    """Settle, now and then, artifact rows a crashed worker left `pending`."""
    def sweep() -> None:
        while True:
            time.sleep(every_seconds)
            try:
                resolve_stale_pending(db, store)
            except Exception as exc:  # PostgreSQL down: try again next time
                log.warning("pending artifact sweep failed: %s", type(exc).__name__)

    thread = threading.Thread(target=sweep, name="xray-artifact-sweeper", daemon=True)
    thread.start()
    return thread


def open_database(settings: Settings) -> Database:
    """Migrate the schema if configured to, then open the connection pool."""
    if not settings.database_url:
        raise ConfigError(
            "XRAY_DATABASE_URL is not set: run `xray serve`, which starts an embedded PostgreSQL, "
            "or point XRAY_DATABASE_URL at your PostgreSQL"
        )
    if settings.migrate_on_start:
        with psycopg.connect(settings.database_url, **connection_kwargs(settings)) as conn:
            version = migrate(conn)
        log.info("schema at version %d", version)
    return Database(settings.database_url, settings)


def get_db() -> Database:
    """The current app's database."""
    return current_app.extensions["xray.db"]


def get_writer() -> ArtifactWriter:
    """The current app's artifact writer."""
    return current_app.extensions["xray.writer"]


def get_store() -> ArtifactStore:
    """The current app's artifact store."""
    return current_app.extensions["xray.store"]


def get_settings() -> Settings:
    """The current app's settings."""
    return current_app.extensions["xray.settings"]

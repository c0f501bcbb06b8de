"""The Flask application factory."""
from __future__ import annotations

import logging

import psycopg
from flask import Flask, current_app

from xray_sdk.limits import DEFAULT_LIMITS

from . import errors
from .config import ConfigError, Settings, load_settings
from .db import Database, connection_kwargs
from .migrations import migrate

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Flask:
    """Build the API. Without `database`, open a pool to `settings.database_url`."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_LIMITS.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    errors.init_app(app, settings.retry_after_seconds)
    app.extensions["xray.db"] = database or open_database(settings)

    from .api import health, openapi, runs, steps

    for blueprint in (health.bp, runs.bp, steps.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app


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

"""What a request reaches besides itself: the app's database, settings, artifact store and writer,
installed once by the factory and read by the routes (flaskr's `db.py`, for X-Ray's resources).
The routes import this module, never the factory; the factory imports the routes."""

from __future__ import annotations

from flask import Flask, current_app

from xray_server.artifacts.stores import ArtifactStore
from xray_server.artifacts.writer import ArtifactWriter
from xray_server.runtime.background import Background
from xray_server.runtime.config import Settings
from xray_server.storage.pool import Database


def install(
    app: Flask,
    *,
    db: Database,
    settings: Settings,
    store: ArtifactStore,
    writer: ArtifactWriter,
    background: Background,
) -> None:
    """Give `app` its resources, and start its upkeep."""
    app.extensions["xray.db"] = db
    app.extensions["xray.settings"] = settings
    app.extensions["xray.store"] = store
    app.extensions["xray.writer"] = writer
    app.extensions["xray.background"] = background.start()


def uninstall(app: Flask, *, close_database: bool = True) -> bool:
    """Stop `app`'s upkeep and, unless told not to, close its pool; whether the upkeep ended in time."""
    stopped = app.extensions["xray.background"].stop()
    if close_database:
        app.extensions["xray.db"].close()
    return bool(stopped)


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

"""The Flask application factory."""

from __future__ import annotations

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server import jsonio
from xray_server.artifacts.stores import open_store
from xray_server.artifacts.writer import ArtifactWriter
from xray_server.runtime.config import Settings, load_settings
from xray_server.runtime.upkeep import upkeep
from xray_server.storage.pool import Database, open_database
from xray_server.web import context, errors
from xray_server.web.routes import analysis, artifacts, health, openapi, runs, steps


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
    writer = ArtifactWriter(
        store,
        budget_ms=settings.artifact_budget_ms,
        budget_bytes=settings.artifact_budget_bytes,
        concurrency=settings.artifact_concurrency,
    )
    context.install(app, db=db, settings=settings, store=store, writer=writer, background=upkeep(db, store, settings))
    for blueprint in (health.bp, runs.bp, steps.bp, analysis.bp, artifacts.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app


def close_app(app: Flask, *, close_database: bool = True) -> bool:
    """Stop the app's upkeep and close its pool (gunicorn's worker exit, tests); whether the upkeep
    thread ended in time."""
    return context.uninstall(app, close_database=close_database)

"""gunicorn settings for X-Ray: `gunicorn -c python:xray_server.runtime.gunicorn_conf xray_server.runtime.wsgi:app`.

With no XRAY_DATABASE_URL, the master starts the embedded PostgreSQL before forking workers,
which inherit its URL, and stops it on exit.
"""

from __future__ import annotations

import os

from xray_server.runtime.config import load_settings

_settings = load_settings()
_embedded = None

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
# Threads overlap the waits on PostgreSQL; a slow client cannot hold a whole worker.
worker_class = "gthread"
threads = _settings.threads
timeout = 30
graceful_timeout = 10
keepalive = 5
# No control socket: gunicorn would otherwise write one under the user's home (~/.gunicorn), outside
# the project, for a tool (gunicornc) X-Ray does not use.
control_socket_disable = True


def on_starting(server) -> None:
    """Start the embedded PostgreSQL when no database is configured."""
    global _embedded
    if _settings.database_url:
        return
    from xray_server.storage.embedded_pg import EmbeddedPostgres

    _embedded = EmbeddedPostgres(_settings.data_dir / "pgdata")
    os.environ["XRAY_DATABASE_URL"] = _embedded.start()
    # A direct connection to a server of our own: no pooler to break prepared statements,
    # which spare PostgreSQL planning the batch merge each time (BENCHMARKS.md, server_path).
    os.environ.setdefault("XRAY_DB_PREPARED_STATEMENTS", "on")
    server.log.info("embedded PostgreSQL ready in %s", _embedded.data_dir)


def worker_exit(server, worker) -> None:
    """Stop the worker's upkeep thread and close its pool as the worker leaves."""
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions") and "xray.background" in app.extensions:
        from xray_server.web.app import close_app

        if not close_app(app):
            server.log.warning("the upkeep thread did not stop in time")


def on_exit(server) -> None:
    """Stop the embedded PostgreSQL, if this master started it."""
    if _embedded is not None:
        _embedded.stop()

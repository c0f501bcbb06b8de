"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint

from xray_server.web.context import get_db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up (says nothing about PostgreSQL)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """PostgreSQL answers; a 503 otherwise (raised by the pool, with Retry-After)."""
    get_db().ping()
    return {"status": "ready"}

"""The one JSON shape every error response has:

{"error": {"code": "...", "message": "...", "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from xray_server.errors import ApiError, DatabaseUnavailable

log = logging.getLogger(__name__)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON every error response carries."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def init_app(app: Flask, retry_after_seconds: int) -> None:
    """Answer every error, ours or Flask's, with the one JSON shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        headers = dict(exc.headers)
        if isinstance(exc, DatabaseUnavailable):
            headers.setdefault("Retry-After", str(retry_after_seconds))
            log.warning("503: %s", exc.message)
        return jsonify(error_body(exc.code, exc.message, exc.details)), exc.status, headers

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        if exc.code == 413:
            code = "payload_too_large"
        return jsonify(error_body(code, exc.description or exc.name)), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Logged with the exception only: request bodies never reach the log.
        log.exception("unhandled error: %s", type(exc).__name__)
        return jsonify(error_body("internal_error", "the server failed; the error is in its log")), 500

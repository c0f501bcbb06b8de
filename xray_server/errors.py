"""Every failure the API can answer, and the single JSON shape it answers with:

    {"error": {"code": "...", "message": "...", "details": {...}}}
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error that carries its HTTP status, a stable code and what the caller can do."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(ApiError):
    """The request is malformed; `details.fields` maps each bad field to its problems."""

    code = "validation_error"

    def __init__(self, fields: dict[str, Any], message: str | None = None):
        names = ", ".join(sorted(str(name) for name in fields)) or "body"
        super().__init__(message or f"invalid request: check {names}", {"fields": fields})


class BadJson(ApiError):
    code = "invalid_json"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class DatabaseUnavailable(ApiError):
    """PostgreSQL is unreachable: X-Ray is broken until it returns (contract), so say so fast."""

    status = 503
    code = "database_unavailable"


def parse_uuid(value: str, field: str, hint: str) -> str:
    """`value` as a canonical UUID, or a 400 naming `field` and what to send instead."""
    import uuid

    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed({field: [f"must be a UUID, {hint}"]}) from None


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

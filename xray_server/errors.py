"""Every failure the API can answer, each with its HTTP status and a stable code. The web
layer (`xray_server.web.errors`) answers them all in one JSON shape:

    {"error": {"code": "...", "message": "...", "details": {...}}}
"""

from __future__ import annotations

from typing import Any


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


class RunOutsidePartitions(ApiError):
    """A run dated a day the hot tier keeps no partition for: past the retention, or ahead of
    the server's clock by more than the partitions made in advance. Retrying will not help."""

    status = 422
    code = "run_outside_partitions"


class DatabaseUnavailable(ApiError):
    """PostgreSQL is unreachable: X-Ray is broken until it returns (contract), so say so fast."""

    status = 503
    code = "database_unavailable"

"""Ids from URLs and query strings: canonical UUIDs, or a 400 that names the field."""

from __future__ import annotations

import uuid

from xray_server.errors import ValidationFailed


def parse_uuid(value: str, field: str, hint: str) -> str:
    """`value` as a canonical UUID, or a 400 naming `field` and what to send instead."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed({field: [f"must be a UUID, {hint}"]}) from None


def parse_run_id(run_id: str) -> str:
    """The canonical form of a run id from a URL, or a 400 naming `run_id`."""
    return parse_uuid(run_id, "run_id", "such as the one POST /api/v1/runs returned")

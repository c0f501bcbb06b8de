"""Request bodies through marshmallow, with field errors named for the caller."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from xray_server.errors import ValidationFailed


def load_body(schema: Schema, payload: Any) -> dict[str, Any]:
    """`payload` loaded by `schema`, or a 400 that names each bad field."""
    if not isinstance(payload, dict):
        raise ValidationFailed({"body": ["must be a JSON object"]})
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise ValidationFailed(as_field_errors(exc.messages)) from None


def as_field_errors(messages: Any) -> dict[str, Any]:
    """Marshmallow's messages with `_schema` renamed to what it is about."""
    if isinstance(messages, dict):
        return {("body" if key == "_schema" else str(key)): value for key, value in messages.items()}
    return {"body": messages if isinstance(messages, list) else [str(messages)]}

"""Opaque keyset cursors: the sort key of the last row of a page, so pages stay stable
while new rows arrive. A cursor that was not issued by this server is a 400, never a 500."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from xray_server.errors import ValidationFailed

_BAD = "is not a cursor this server issued; repeat the query without it to start again"


def encode(started_at: datetime, *ids: Any) -> str:
    """The cursor that resumes after a row sorted by (started_at, *ids) descending."""
    raw = json.dumps([started_at.isoformat(), *(str(i) for i in ids)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, id_count: int) -> tuple[Any, ...]:
    """The (started_at, *ids) a cursor holds; ids are UUIDs."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != 1 + id_count:
            raise ValueError("wrong shape")
        moment = datetime.fromisoformat(values[0])
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return (moment, *(str(uuid.UUID(v)) for v in values[1:]))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationFailed({"cursor": [_BAD]}) from None

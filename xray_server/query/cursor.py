"""Opaque keyset cursors: the sort key of the last row of a page, so pages stay stable while new
rows arrive. Packed, not spelled out: the start time in microseconds and each id's 16 bytes, in
URL-safe base64 (54 characters for a step, against 150 as JSON), so a person can still copy one.
A cursor that was not issued by this server is a 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from xray_server.errors import ValidationFailed

_BAD = "is not a cursor this server issued; repeat the query without it to start again"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIME = struct.Struct(">q")


def encode(started_at: datetime, *ids: Any) -> str:
    """The cursor that resumes after a row sorted by (started_at, *ids) descending."""
    raw = _TIME.pack((started_at - _EPOCH) // _MICROSECOND) + b"".join(uuid.UUID(str(i)).bytes for i in ids)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, id_count: int) -> tuple[Any, ...]:
    """The (started_at, *ids) a cursor holds; ids are UUIDs."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if len(raw) != _TIME.size + 16 * id_count:
            raise ValueError("wrong size")
        moment = _EPOCH + _TIME.unpack_from(raw)[0] * _MICROSECOND
        ids = (str(uuid.UUID(bytes=raw[_TIME.size + 16 * i : _TIME.size + 16 * (i + 1)])) for i in range(id_count))
        return (moment, *ids)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise ValidationFailed({"cursor": [_BAD]}) from None

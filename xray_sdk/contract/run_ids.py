"""The day a run id carries: where the server keeps the run's rows, found without a lookup.

The hot tier is partitioned by a run's day (ARCHITECTURE.md, "Partitions"). A run id made by an
X-Ray SDK is a version-8 UUID (RFC 9562, "custom") whose second group is the run's start day as
days since 1970-01-01 (UTC), so every event of the run names its partition by its URL alone. A
version-7 UUID carries its time by the standard (the first 48 bits, milliseconds since the
epoch). Any other id carries no day: the server then anchors the run where it first saw it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

EPOCH = date(1970, 1, 1)
# 16 bits of days since EPOCH reach 2149: a run id outlives any retention window.
MAX_DAY_NUMBER = 0xFFFF
VERSION = 8


def day_number(at: datetime | date) -> int:
    """Days from EPOCH to `at` (a datetime is taken in UTC), as a run id's second group holds them."""
    if isinstance(at, datetime):
        at = at.astimezone(UTC).date()
    return (at - EPOCH).days


def day_of_run_id(run_id: str | uuid.UUID) -> date | None:
    """The day `run_id` carries (version 8: X-Ray's layout; version 7: its timestamp), or None."""
    value = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
    if value.variant != uuid.RFC_4122:
        return None
    if value.version == VERSION:
        return EPOCH + timedelta(days=(value.int >> 80) & MAX_DAY_NUMBER)
    if value.version == 7:
        return datetime.fromtimestamp((value.int >> 80) / 1000, UTC).date()
    return None


def with_day(value: uuid.UUID, at: datetime | date) -> uuid.UUID:
    """`value` made a run id that carries the day of `at`: its second group replaced by the day,
    its version set to 8 (the rest, random in a UUIDv4, stays as it is)."""
    day = min(max(day_number(at), 0), MAX_DAY_NUMBER)
    bits = value.int & ~(MAX_DAY_NUMBER << 80) & ~(0xF << 76) | (day << 80) | (VERSION << 76)
    return uuid.UUID(int=bits)

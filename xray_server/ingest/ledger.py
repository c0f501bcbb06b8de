"""The idempotency ledger keeps itself small: it only has to outlive an SDK's retries (minutes),
so it is partitioned by the day an event was received, and the days past a horizon are dropped,
whole, by one worker at a time. A replay older than the horizon is applied again, and changes
nothing: every merge rule is order-free and keyed by its event (ARCHITECTURE.md, "Ingest"; the
test in test_ledger.py). So is a replay across midnight, which meets the next day's partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xray_server.storage.partitions import LEDGER, drop_partition, partitions
from xray_server.storage.pool import Database

_PRUNE_LOCK = 0x58524159_0003  # "XRAY", ledger


def prune_ledger(db: Database, older_than: timedelta, *, now: datetime | None = None) -> list[str]:
    """Drop the ledger's partitions whose every event was received longer ago than `older_than`;
    their names. A worker that finds another pruning does nothing."""
    cutoff = ((now or datetime.now(UTC)) - older_than).astimezone(UTC).date()
    dropped: list[str] = []
    with db.connection() as conn:
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS locked", (_PRUNE_LOCK,)).fetchone()
            if not locked["locked"]:
                return dropped
            expired = [p.name for p in partitions(conn, LEDGER) if p.upper <= cutoff]
        # Outside the transaction: a concurrent detach cannot run in one.
        for name in expired:
            drop_partition(conn, LEDGER, name)
            dropped.append(name)
    return dropped

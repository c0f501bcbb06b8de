"""The idempotency ledger keeps itself small: it only has to outlive an SDK's retries (minutes),
so rows older than a horizon are deleted now and then, a bounded batch at a time, by one worker at
a time. A replay older than the horizon is applied again, and changes nothing: every merge rule
is order-free and keyed by its event (ARCHITECTURE.md, "Ingest"; the test in test_ledger.py)."""

from __future__ import annotations

from datetime import timedelta

from xray_server.storage.pool import Database

_PRUNE_LOCK = 0x58524159_0003  # "XRAY", ledger
# Rows deleted per statement: a short transaction, whatever the backlog.
PRUNE_BATCH = 10_000


def prune_ledger(db: Database, older_than: timedelta, *, batch: int = PRUNE_BATCH, max_batches: int = 100) -> int:
    """Delete ledger rows received longer ago than `older_than`, `batch` at a time, until none is
    left or `max_batches` ran (the rest waits for the next time); how many were deleted. A worker
    that finds another pruning does nothing."""
    deleted = 0
    for _ in range(max_batches):
        with db.connection() as conn, conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS locked", (_PRUNE_LOCK,)).fetchone()
            if not locked["locked"]:
                return deleted
            done = conn.execute(
                "DELETE FROM ingested_events WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM ingested_events WHERE received_at < now() - %s LIMIT %s))",
                (older_than, batch),
            ).rowcount
        deleted += done
        if done < batch:
            return deleted
    return deleted

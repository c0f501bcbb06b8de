"""Settling artifact rows a crashed worker left `pending`: `stored` if the object exists,
`dropped` (`lost`) if not. Each worker sweeps now and then; `xray gc` sweeps too."""
from __future__ import annotations

import logging
from typing import Any

from xray_sdk.contract.vocabulary import ArtifactStatus, DropReason

from xray_server.artifacts.stores import ArtifactStore, BadKey, StoreUnavailable
from xray_server.artifacts.writer import record_outcomes
from xray_server.storage.pool import Database

log = logging.getLogger(__name__)

_SWEEP_LOCK = 0x58524159_0002  # "XRAY", sweep


def resolve_stale_pending(db: Database, store: ArtifactStore, *, older_than_seconds: float = 60,
                          limit: int = 500) -> int:
    """Rows still `pending` long after their request: `stored` if the object exists (the write
    finished before a crash), else `dropped` with reason `lost`. Returns how many were settled."""
    with db.connection() as conn, conn.transaction():
        # Every worker sweeps; one at a time is enough. The lock ends with this transaction.
        if not next(iter(conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_SWEEP_LOCK,)).fetchone().values())):
            return 0
        rows = conn.execute(
            """
            SELECT run_id, artifact_id, event_id, store_key FROM artifacts
            WHERE status = 'pending' AND created_at < now() - make_interval(secs => %s)
            ORDER BY created_at LIMIT %s
            """,
            (older_than_seconds, limit),
        ).fetchall()
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        try:
            found = bool(row["store_key"]) and store.exists(row["store_key"])
        except (StoreUnavailable, BadKey):
            continue  # try again later rather than call it lost
        by_run.setdefault(str(row["run_id"]), []).append({
            "artifact_id": str(row["artifact_id"]), "event_id": str(row["event_id"]),
            "status": ArtifactStatus.STORED.value if found else ArtifactStatus.DROPPED.value,
            "drop_reason": None if found else DropReason.LOST.value})
    for run_id, outcomes in by_run.items():
        record_outcomes(db, run_id, outcomes)
    return sum(len(v) for v in by_run.values())

"""Retention of the cold tier: delete the artifacts of old runs, so it does not grow forever."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from xray_sdk.contract.vocabulary import ArtifactStatus, DropReason

from xray_server.artifacts.writer import record_outcomes
from xray_server.storage.pool import Database
from xray_server.artifacts.stores import ArtifactStore, BadKey, ObjectMissing, StoreUnavailable


def collect(db: Database, store: ArtifactStore, older_than: timedelta, *, batch: int = 500,
            dry_run: bool = False) -> dict[str, Any]:
    """Delete stored artifacts of runs started before now - `older_than`; mark their rows
    `dropped` with reason `retention`. Objects the store cannot delete now are left for the
    next collection, their rows unchanged."""
    cutoff = datetime.now(timezone.utc) - older_than
    deleted = failed = 0
    last: tuple = ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000")
    while True:
        with db.connection() as conn:
            rows = conn.execute(
                """
                SELECT a.run_id, a.artifact_id, a.event_id, a.store_key FROM artifacts a
                JOIN runs r ON r.run_id = a.run_id AND r.run_day = a.run_day
                WHERE a.status = 'stored' AND r.started_at < %s AND (a.run_id, a.artifact_id) > (%s, %s)
                ORDER BY a.run_id, a.artifact_id LIMIT %s
                """,
                (cutoff, last[0], last[1], batch),
            ).fetchall()
        if not rows:
            break
        last = (rows[-1]["run_id"], rows[-1]["artifact_id"])
        if dry_run:
            deleted += len(rows)
            continue
        by_run: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            try:
                store.delete(row["store_key"])
            except (StoreUnavailable, BadKey):
                failed += 1
                continue
            except ObjectMissing:
                pass
            deleted += 1
            by_run.setdefault(str(row["run_id"]), []).append({
                "artifact_id": str(row["artifact_id"]), "event_id": str(row["event_id"]),
                "status": ArtifactStatus.DROPPED.value, "drop_reason": DropReason.RETENTION.value})
        for run_id, outcomes in by_run.items():
            record_outcomes(db, run_id, outcomes, from_status=ArtifactStatus.STORED.value)
    return {"cutoff": cutoff.isoformat(), "deleted": deleted, "failed": failed, "dry_run": dry_run}

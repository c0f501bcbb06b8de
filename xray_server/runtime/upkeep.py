"""What a worker does besides answering requests, as `Background` jobs: settle artifact rows a
crash left pending, prune the ingest ledger past its horizon, create the partitions due next,
apply the retention and pack the indexes of the days that are over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from xray_server.artifacts.stores import ArtifactStore, ObjectMissing
from xray_server.artifacts.sweep import resolve_stale_pending
from xray_server.ingest.ledger import prune_ledger
from xray_server.runtime.background import Background, Job
from xray_server.runtime.config import Settings
from xray_server.storage.compaction import compact_closed
from xray_server.storage.partitions import ensure_ahead
from xray_server.storage.pool import Database
from xray_server.storage.retention import RetentionReport, apply_retention


def upkeep(db: Database, store: ArtifactStore, settings: Settings) -> Background:
    """The worker's periodic jobs (not started); a job whose interval is 0 is left out."""
    jobs = [Job("artifact sweep", settings.artifact_sweep_seconds, lambda: resolve_stale_pending(db, store))]
    if settings.ledger_hours > 0:
        horizon = timedelta(hours=settings.ledger_hours)
        jobs.append(Job("ledger prune", settings.ledger_prune_seconds, lambda: prune_ledger(db, horizon)))
    jobs.append(Job("partitions", settings.partition_upkeep_seconds, lambda: partition_upkeep(db, store, settings)))
    return Background(jobs)


def partition_upkeep(
    db: Database, store: ArtifactStore | None, settings: Settings, *, dry_run: bool = False
) -> RetentionReport | None:
    """Create the partitions due in the next days, apply the retention if one is set, then pack
    the indexes of the days that are over (`storage/compaction.py`); the retention's report (None
    without one)."""
    today = datetime.now(UTC).date()
    if not dry_run:
        with db.connection() as conn:
            ensure_ahead(conn, today, settings.partition_days)
    report = None
    if settings.retention_days > 0:
        report = apply_retention(
            db,
            today=today,
            keep_days=settings.retention_days,
            judged_days=settings.judged_retention_days,
            delete_object=_deleter(store) if store is not None else None,
            dry_run=dry_run,
        )
    if not dry_run:
        compact_closed(db, today)
    return report


def _deleter(store: ArtifactStore) -> Callable[[str], None]:
    def delete(key: str) -> None:
        try:
            store.delete(key)
        except ObjectMissing:
            pass  # already gone: what the retention wanted

    return delete

"""What a worker does besides answering requests, as `Background` jobs: settle artifact rows a
crash left pending, and prune the ingest ledger past its horizon."""

from __future__ import annotations

from datetime import timedelta

from xray_server.artifacts.stores import ArtifactStore
from xray_server.artifacts.sweep import resolve_stale_pending
from xray_server.ingest.ledger import prune_ledger
from xray_server.runtime.background import Background, Job
from xray_server.runtime.config import Settings
from xray_server.storage.pool import Database


def upkeep(db: Database, store: ArtifactStore, settings: Settings) -> Background:
    """The worker's periodic jobs (not started); a job whose interval is 0 is left out."""
    jobs = [Job("artifact sweep", settings.artifact_sweep_seconds, lambda: resolve_stale_pending(db, store))]
    if settings.ledger_hours > 0:
        horizon = timedelta(hours=settings.ledger_hours)
        jobs.append(Job("ledger prune", settings.ledger_prune_seconds, lambda: prune_ledger(db, horizon)))
    return Background(jobs)

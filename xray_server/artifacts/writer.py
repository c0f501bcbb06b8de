"""Writing artifact payloads after the step is committed, within a budget, never at the cost
of metrics. Every artifact row ends `stored` (the object exists) or `dropped` with a reason:

- `store_unavailable`: the store failed or its circuit breaker is open;
- `load_shed`: this request's time or bytes budget, or the worker's write slots, were spent;
- `too_large` / `capture_policy`: decided at ingest, before anything is written;
- `lost`: the row stayed `pending` (a worker died between commit and write) and no object exists;
- `not_found`: a client's reference to an object the store does not have.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from xray_sdk.contract.vocabulary import ArtifactStatus, DropReason
from xray_sdk.delivery.breaker import CircuitBreaker
from xray_server.storage.pool import Database
from xray_server.artifacts.stores import ArtifactStore, BadKey, StoreUnavailable

log = logging.getLogger(__name__)

STORED, PENDING, DROPPED = ArtifactStatus.STORED.value, ArtifactStatus.PENDING.value, ArtifactStatus.DROPPED.value


@dataclass
class PendingArtifact:
    """An artifact row committed as `pending`, with what it takes to settle it."""

    artifact_id: str
    event_id: str
    key: str
    content_type: str
    data: bytes | None  # None: a client's reference, only checked for existence
    index: int = 0
    name: str = ""
    run_id: str = ""  # the run's, when a settle covers the artifacts of many runs


class ArtifactWriter:
    """Settles the pending artifacts of one ingest request against the store.

    Writes run on a small thread pool shared by the worker's requests, so a batch's artifacts
    go out in parallel; whatever has not finished when the request's budget runs out is not
    waited for: not yet started, it is dropped (`load_shed`); already under way, its row stays
    `pending` and the sweep settles it from what the store then holds.
    """

    def __init__(self, store: ArtifactStore, *, budget_ms: int, budget_bytes: int, concurrency: int,
                 parallel_writes: int = 8) -> None:
        self.store = store
        self.budget_ms = budget_ms
        self.budget_bytes = budget_bytes
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.pool = ThreadPoolExecutor(max_workers=parallel_writes, thread_name_prefix="xray-artifacts")
        self.breaker = CircuitBreaker(threshold=3, cooldown=2.0, ceiling=30.0)

    def settle(self, db: Database, run_id: str | None, pending: list[PendingArtifact]) -> list[dict[str, Any]]:
        """Write what the budget allows, record each outcome, and return the outcomes. The
        artifacts are of `run_id`, or, when it is None, each of its own (a multi-run batch:
        one budget for the request, whatever the number of its runs)."""
        if not pending:
            return []
        deadline = time.monotonic() + self.budget_ms / 1000
        acquired = self.slots.acquire(timeout=self.budget_ms / 1000)
        try:
            results = self._write_all(pending, acquired, deadline)
        finally:
            if acquired:
                self.slots.release()
        outcomes = [{"run_id": item.run_id or run_id, "artifact_id": item.artifact_id,
                     "event_id": item.event_id, "status": status,
                     "drop_reason": reason, "index": item.index, "name": item.name}
                    for item, (status, reason) in zip(pending, results)]
        record_outcomes(db, run_id, [o for o in outcomes if o["status"] != "pending"])
        return outcomes

    def _write_all(self, pending: list[PendingArtifact], acquired: bool, deadline: float) -> list[tuple[str, str | None]]:
        results: list[tuple[str, str | None] | None] = [None] * len(pending)
        futures = {}
        spent = 0
        for i, item in enumerate(pending):
            if not self.breaker.allows():
                results[i] = (DROPPED, DropReason.STORE_UNAVAILABLE.value)
            elif not acquired:
                results[i] = (DROPPED, DropReason.LOAD_SHED.value)
            elif item.data is not None and spent + len(item.data) > self.budget_bytes:
                results[i] = (DROPPED, DropReason.LOAD_SHED.value)
            else:
                spent += len(item.data or b"")
                futures[self.pool.submit(self._write_one, item, deadline)] = i
        done, not_done = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future in done:
            results[futures[future]] = future.result()
        for future in not_done:
            # Not started: never will be. Started: its outcome is for the sweep to read.
            results[futures[future]] = (DROPPED, DropReason.LOAD_SHED.value) if future.cancel() else (PENDING, None)
        return results  # type: ignore[return-value]

    def _write_one(self, item: PendingArtifact, deadline: float) -> tuple[str, str | None]:
        if time.monotonic() >= deadline:
            return DROPPED, DropReason.LOAD_SHED.value
        unavailable = DropReason.STORE_UNAVAILABLE.value
        if not self.breaker.allows():
            return DROPPED, unavailable
        try:
            if item.data is None:
                found = self.store.exists(item.key)
                self.breaker.record_success()
                return (STORED, None) if found else (DROPPED, DropReason.NOT_FOUND.value)
            self.store.put(item.key, item.data, item.content_type)
        except BadKey:
            return DROPPED, DropReason.INVALID_KEY.value
        except StoreUnavailable as exc:
            self.breaker.record_failure()
            log.warning("artifact store unavailable: %s", exc)
            return DROPPED, unavailable
        except Exception as exc:  # a store bug must not fail the ingest request
            log.warning("artifact write failed: %s", type(exc).__name__)
            return DROPPED, unavailable
        self.breaker.record_success()
        return STORED, None


def record_outcomes(db: Database, run_id: str | None, outcomes: list[dict[str, Any]], *,
                    from_status: str = "pending") -> None:
    """Move rows still in `from_status` to their outcome; a row a newer step_end has since
    replaced (another event_id) is left to that one. The rows are of `run_id`, or of the run
    each outcome names."""
    if not outcomes:
        return
    with db.connection() as conn:
        conn.execute(
            """
            UPDATE artifacts a SET status = f.status, drop_reason = f.drop_reason
            FROM jsonb_to_recordset(%s)
                 AS f(run_id uuid, artifact_id uuid, event_id uuid, status text, drop_reason text)
            WHERE a.run_id = f.run_id AND a.artifact_id = f.artifact_id AND a.event_id = f.event_id
              AND a.status = %s
            """,
            (Jsonb([{"run_id": o.get("run_id") or run_id,
                     **{k: o[k] for k in ("artifact_id", "event_id", "status", "drop_reason")}} for o in outcomes]),
             from_status),
        )

"""Applying a batch of events to a run in the hot tier.

Rules this module owns:
- Replaying a batch, or receiving events out of order or twice, leaves one final state:
  each event_id is applied once per run (the `ingested_events` ledger), and the step
  merge (`merge.py`) is order-independent (earliest start, latest end wins, ties by event id).
- Events for a run never created still land: the run is made implicitly.
- A batch is atomic: usually one statement (ledger, run and steps together), whatever its
  size; more only when it holds a step several times or artifacts, and then one transaction.
- Valid events beside invalid ones are stored; the invalid ones are reported one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import psycopg
from marshmallow import ValidationError
from psycopg.types.json import Jsonb

from xray_server.artifacts.writer import ArtifactWriter
from xray_server.ids import parse_run_id
from xray_server.ingest.bodies import as_field_errors, load_body
from xray_server.ingest.merge import APPLY_BATCH, INSERT_ARTIFACTS, UPSERT_STEPS
from xray_server.ingest.placement import is_missing_partition, outside_partitions, run_day
from xray_server.ingest.rows import ArtifactPolicy, EventRejected, PreparedEvent, prepare, uuid_array
from xray_server.schemas.events import BatchSchema, load_event
from xray_server.schemas.responses import BatchResultSchema
from xray_server.schemas.views import projector
from xray_server.storage.partitions import carried_day
from xray_server.storage.pool import Database

_batch_schema = BatchSchema()
_batch_result_view = projector(BatchResultSchema)


@dataclass
class BatchResult:
    """What happened to each event of a batch."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    contract_violations: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        """207 when any event was refused, so a client cannot mistake it for full success."""
        return 207 if self.rejected else 200

    def to_dict(self) -> dict[str, Any]:
        """The response body, as `BatchResultSchema` describes it."""
        return _batch_result_view(vars(self))


def ingest_events(
    db: Database, run_id: str, payload: Any, writer: ArtifactWriter | None = None, max_capture: str = "full"
) -> BatchResult:
    """Validate a batch, apply its valid events to the run atomically, then write the
    artifact payloads with `writer` (after commit: metrics never wait on the cold tier)."""
    run_id = parse_run_id(run_id)
    raw_events = load_body(_batch_schema, payload)["events"]
    result = BatchResult()
    policy = ArtifactPolicy(has_store=writer is not None, max_capture=max_capture)
    prepared = _prepare_all(run_id, raw_events, result, policy)
    if not prepared:
        return result
    unique = first_of_each_event(prepared)
    result.duplicates += len(prepared) - len(unique)
    with db.connection() as conn:
        fresh = _apply(conn, run_id, unique)
    result.accepted = len(fresh)
    result.duplicates += len(unique) - len(fresh)
    report(fresh, result)
    settle_artifacts(db, writer, run_id, fresh, result)
    return result


def settle_artifacts(
    db: Database, writer: ArtifactWriter | None, run_id: str | None, fresh: list[PreparedEvent], result: BatchResult
) -> None:
    """After the commit, write the applied events' pending artifacts within the writer's budget
    (of `run_id`, or each of its own when None), and answer each artifact's outcome."""
    settled = {}
    if writer is not None:
        settled = {o["artifact_id"]: o for o in writer.settle(db, run_id, [a for p in fresh for a in p.pending])}
    for p in fresh:
        for row in p.artifact_rows:
            outcome = settled.get(row["artifact_id"], row)
            result.artifacts.append(
                {
                    "index": p.index,
                    "name": row["name"],
                    "artifact_id": row["artifact_id"],
                    "status": outcome["status"],
                    "drop_reason": outcome["drop_reason"],
                }
            )


def _prepare_all(
    run_id: str, raw_events: list[Any], result: BatchResult, policy: ArtifactPolicy
) -> list[PreparedEvent]:
    prepared = []
    for index, raw in enumerate(raw_events):
        try:
            prepared.append(prepare_event(run_id, index, raw, policy))
        except EventRejected as exc:
            result.rejected.append(rejection(index, raw, exc.fields))
    return prepared


def prepare_event(run_id: str, index: int, raw: Any, policy: ArtifactPolicy) -> PreparedEvent:
    """One event of `run_id` validated and bounded; `EventRejected` naming its fields if not valid."""
    try:
        return prepare(run_id, index, load_event(raw), policy=policy)
    except ValidationError as exc:
        raise EventRejected(as_field_errors(exc.messages)) from None


def rejection(index: int, raw: Any, errors: dict[str, Any]) -> dict[str, Any]:
    """How a refused event is answered: its index, its id when it has one, and its field errors."""
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return {"index": index, "event_id": event_id if isinstance(event_id, str) else None, "errors": errors}


def first_of_each_event(prepared: list[PreparedEvent]) -> list[PreparedEvent]:
    """The first of each event a batch holds twice (an event is its run and id)."""
    seen: dict[tuple[str, str], PreparedEvent] = {}
    for p in prepared:
        seen.setdefault((p.run_id, p.event_id), p)
    return list(seen.values())


def report(fresh: list[PreparedEvent], result: BatchResult) -> None:
    """Add the applied events' contract violations and truncations to `result`."""
    for p in fresh:
        if p.violations:
            result.contract_violations.append(
                {"index": p.index, "event_id": p.event_id, "step_id": p.step_row["step_id"], "violations": p.violations}
            )
        if p.truncated:
            result.truncated.append({"index": p.index, "event_id": p.event_id, "fields": p.truncated})


def _apply(conn, run_id: str, unique: list[PreparedEvent]) -> list[PreparedEvent]:
    """Apply the batch's events; return those not seen before (the rest were replays).

    The usual batch (each step once, no artifact) is one statement, atomic on its own: the
    ledger, the run and the steps in one round trip. A step appearing several times, or
    artifact rows, add statements, and then the whole is one transaction.
    """
    rounds = step_rounds([p.step_row for p in unique if p.step_row])
    has_artifacts = any(p.artifact_rows for p in unique)
    # A run id that carries no day is placed by a lookup, under a lock held till the commit.
    day = carried_day(conn, run_id)
    try:
        with conn.transaction() if len(rounds) > 1 or has_artifacts or day is None else nullcontext():
            day = day or run_day(conn, run_id, min(p.ts for p in unique))
            new_ids = _apply_first_round(conn, run_id, day, unique, rounds[0] if rounds else [])
            fresh = [p for p in unique if p.event_id in new_ids]
            fresh_rows = {id(p.step_row) for p in fresh if p.step_row}
            for later in rounds[1:]:
                _upsert_steps(conn, run_id, day, [row for row in later if id(row) in fresh_rows])
            _insert_artifacts(conn, run_id, day, [a for p in fresh for a in p.artifact_rows])
    except psycopg.errors.CheckViolation as exc:
        if day is None or not is_missing_partition(exc):
            raise
        raise outside_partitions(conn, run_id, day) from None
    return fresh


def _apply_first_round(
    conn, run_id: str, day: date, unique: list[PreparedEvent], rows: list[dict[str, Any]]
) -> set[str]:
    params = run_fragment(unique)
    params.update(
        run_id=run_id,
        run_day=day,
        # Sorted so that concurrent batches lock ledger entries in the same order.
        event_ids=uuid_array(sorted(p.event_id for p in unique)),
        rows=Jsonb(rows),
        f_outcome=None if params["f_outcome"] is None else Jsonb(params["f_outcome"]),
        f_error=None if params["f_error"] is None else Jsonb(params["f_error"]),
    )
    return {str(row["event_id"]) for row in conn.execute(APPLY_BATCH, params).fetchall()}


def run_fragment(events: list[PreparedEvent]) -> dict[str, Any]:
    """What a run's events in a batch say of the run: its earliest event (an implicit run's
    start), and its latest run_finish (`f_*`, None without one), the only one that can win."""
    finishes = [p for p in events if p.finish]
    finish = max(finishes, key=lambda p: (p.ts, uuid.UUID(p.event_id))) if finishes else None
    fragment: dict[str, Any] = {"earliest": min(p.ts for p in events)}
    if finish is None:
        return fragment | dict.fromkeys(("f_status", "f_outcome", "f_error", "f_ts", "f_event_id"))
    return fragment | {
        "f_status": finish.finish["status"],
        "f_outcome": finish.finish["outcome"],
        "f_error": finish.finish["error"],
        "f_ts": finish.ts,
        "f_event_id": finish.event_id,
    }


def _upsert_steps(conn, run_id: str, day: date, rows: list[dict[str, Any]]) -> None:
    """Merge step fragments. One statement cannot touch a row twice, so a batch holding
    several events of one step is applied in rounds: the n-th event of each step in round n."""
    for round_rows in step_rounds(rows):
        conn.execute(UPSERT_STEPS, {"run_id": run_id, "run_day": day, "rows": Jsonb(round_rows)})


def step_rounds(
    rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Hashable] = itemgetter("step_id")
) -> list[list[dict[str, Any]]]:
    """The step fragments in rounds that each touch a step once: the n-th fragment of each step
    (by `key`) in round n, since one statement may not touch a row twice."""
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[Hashable, int] = {}
    for row in rows:
        k = key(row)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return rounds


def _insert_artifacts(conn, run_id: str, day: date, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn.execute(
        INSERT_ARTIFACTS,
        (run_id, day, Jsonb(latest_per_key(rows, "artifact_id"))),
    )


def latest_per_key(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The latest row per key: one statement may not touch a row twice."""

    def rank(row: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(row["event_ts"]), uuid.UUID(row["event_id"])

    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = latest.get(row[key])
        if current is None or rank(row) > rank(current):
            latest[row[key]] = row
    return list(latest.values())

"""Applying a multi-run batch (`POST /api/v1/batch`): the run creations, events and labels of many
runs in one request, set-wise, in one transaction.

Rules this module owns (the merge rules are `merge.py`'s, the same as for one run's batch):
- Each item is checked on its own: a refused one is answered with its index and why, naming the
  field, and the valid ones beside it are applied.
- One transaction: the creations (one statement), then the events of every run (one statement
  for the ledger, the runs and the first round of steps; more only for a step held several times,
  and for artifact rows), then the labels. A failure stores none of it.
- A run dated a day no partition holds refuses its own items (`run_outside_partitions`), never
  the batch: the transaction is applied again without them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import psycopg
from marshmallow import ValidationError
from psycopg.types.json import Jsonb

from xray_server.artifacts.writer import ArtifactWriter
from xray_server.errors import Conflict, RunOutsidePartitions, ValidationFailed
from xray_server.ids import canonical_uuid
from xray_server.ingest.batch import (
    BatchResult,
    first_of_each_event,
    latest_per_key,
    prepare_event,
    rejection,
    report,
    run_fragment,
    settle_artifacts,
    step_rounds,
)
from xray_server.ingest.bodies import as_field_errors, load_body
from xray_server.ingest.labels import load_labels, write_labels
from xray_server.ingest.merge import APPLY_RUNS_BATCH, INSERT_ARTIFACTS_OF_RUNS, UPSERT_STEPS_OF_RUNS
from xray_server.ingest.placement import is_missing_partition, outside_partitions, run_day
from xray_server.ingest.rows import ArtifactPolicy, EventRejected, PreparedEvent, uuid_array
from xray_server.ingest.runs import CREATE_RUNS, conflict, run_values
from xray_server.schemas.batch import BatchRunSchema, RunsBatchSchema
from xray_server.storage.partitions import KEPT_DAY, PARTITIONED, partitions
from xray_server.storage.pool import Database

_batch_schema = RunsBatchSchema()
_run_schema = BatchRunSchema()
# One try, and one more for each run found dated outside the partitions (a partition the
# retention drops between two tries is the only way to need a third).
_ATTEMPTS = 3


@dataclass
class RunsBatchResult:
    """What happened to each item of a multi-run batch."""

    created: int = 0
    existing: int = 0
    runs_rejected: list[dict[str, Any]] = field(default_factory=list)
    events: BatchResult = field(default_factory=BatchResult)
    labels_recorded: int = 0
    labels_rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        """207 when any item was refused, so a client cannot mistake it for full success."""
        return 207 if self.runs_rejected or self.events.rejected or self.labels_rejected else 200

    def to_dict(self) -> dict[str, Any]:
        """The response body, as `RunsBatchResultSchema` describes it."""
        return {
            "runs": {"created": self.created, "existing": self.existing, "rejected": self.runs_rejected},
            "events": self.events.to_dict(),
            "labels": {"recorded": self.labels_recorded, "rejected": self.labels_rejected},
        }


@dataclass
class _Creation:
    index: int
    data: dict[str, Any]  # as validated, to compare with a stored run
    values: dict[str, Any]  # as written

    @property
    def run_id(self) -> str:
        return str(self.values["run_id"])


@dataclass
class _Applied:
    created: set[int]  # the indexes of the creations that made (or completed) their run
    conflicts: dict[int, Conflict]
    fresh: list[PreparedEvent]  # the events applied for the first time
    outside: dict[str, RunOutsidePartitions]  # the runs whose items were left out


def ingest_batch(
    db: Database, payload: Any, writer: ArtifactWriter | None = None, max_capture: str = "full"
) -> RunsBatchResult:
    """Validate a multi-run batch, apply its valid items in one transaction, then write the
    artifact payloads with `writer` within its budget (after the commit, as for one run's batch)."""
    body = load_body(_batch_schema, payload)
    now = datetime.now(UTC)
    result = RunsBatchResult()
    creations = _load_creations(body["runs"], now, result)
    policy = ArtifactPolicy(has_store=writer is not None, max_capture=max_capture)
    prepared = _prepare_events(body["events"], policy, result.events)
    labels, refused = load_labels(body["labels"], now)
    result.labels_rejected = [_refusal(i, body["labels"][i], fields) for i, fields in refused]
    events = first_of_each_event(prepared)
    if not (creations or events or labels):
        return result
    with db.connection() as conn:
        applied = _write(conn, creations, events, labels)
    _answer_runs(creations, applied, result)
    fresh, outside = applied.fresh, applied.outside
    stored = [p for p in prepared if p.run_id not in outside]
    result.events.accepted = len(fresh)
    result.events.duplicates = len(stored) - len(fresh)
    result.events.rejected += [
        _outside(p.index, p.run_id, outside[p.run_id]) | {"event_id": p.event_id}
        for p in prepared
        if p.run_id in outside
    ]
    result.events.rejected.sort(key=itemgetter("index"))
    result.labels_recorded = len(labels)
    report(fresh, result.events)
    settle_artifacts(db, writer, None, fresh, result.events)
    return result


def _load_creations(raws: list[Any], now: datetime, result: RunsBatchResult) -> list[_Creation]:
    creations = []
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            result.runs_rejected.append(_refusal(index, raw, {"body": ["each run must be a JSON object"]}))
            continue
        try:
            data = _run_schema.load(raw)
        except ValidationError as exc:
            result.runs_rejected.append(_refusal(index, raw, as_field_errors(exc.messages)))
            continue
        creations.append(_Creation(index, data, run_values(data, now)))
    return creations


def _prepare_events(raws: list[Any], policy: ArtifactPolicy, result: BatchResult) -> list[PreparedEvent]:
    """Each event validated on its own, its run taken from its `run_id`; every problem of a
    refused one is named, its run's included."""
    prepared = []
    for index, raw in enumerate(raws):
        problems: dict[str, Any] = {}
        event, run_id = raw, None
        if isinstance(raw, dict):
            event = dict(raw)
            run_id = _run_id(event.pop("run_id", None), problems)
        try:
            p = prepare_event(run_id or _NO_RUN, index, event, policy)
        except EventRejected as exc:
            problems.update(exc.fields)
        else:
            if not problems:
                prepared.append(p)
        if problems:
            result.rejected.append(_refusal(index, raw, problems, event=True))
    return prepared


_NO_RUN = str(uuid.UUID(int=0))


def _run_id(value: Any, problems: dict[str, Any]) -> str | None:
    if value is None:
        problems["run_id"] = ["Missing data for required field."]
        return None
    try:
        return canonical_uuid(value)
    except (ValueError, TypeError, AttributeError):
        problems["run_id"] = ["Not a valid UUID."]
        return None


def _refusal(index: int, raw: Any, errors: dict[str, Any], *, event: bool = False) -> dict[str, Any]:
    """A refused item: its index, its run as it named it, and the fields; an event's id too."""
    run_id = raw.get("run_id") if isinstance(raw, dict) else None
    run_id = run_id if isinstance(run_id, str) else None
    refused = _refused(index, run_id, ValidationFailed.code, errors)
    return refused | {"event_id": rejection(index, raw, errors)["event_id"]} if event else refused


def _refused(index: int, run_id: str | None, code: str, errors: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "run_id": run_id, "code": code, "errors": errors}


def _outside(index: int, run_id: str, error: RunOutsidePartitions) -> dict[str, Any]:
    return _refused(index, run_id, error.code, {"run_id": [error.message]})


def _answer_runs(creations: list[_Creation], applied: _Applied, result: RunsBatchResult) -> None:
    for c in creations:
        if c.run_id in applied.outside:
            result.runs_rejected.append(_outside(c.index, c.run_id, applied.outside[c.run_id]))
        elif c.index in applied.conflicts:
            error = applied.conflicts[c.index]
            errors = {name: [error.message] for name in error.details["fields"]}
            result.runs_rejected.append(_refused(c.index, c.run_id, error.code, errors))
        elif c.index in applied.created:
            result.created += 1
        else:
            result.existing += 1
    result.runs_rejected.sort(key=itemgetter("index"))


def _write(
    conn: psycopg.Connection, creations: list[_Creation], events: list[PreparedEvent], labels: list[dict[str, Any]]
) -> _Applied:
    """Apply everything in one transaction; again without the runs a missing partition refused."""
    outside: dict[str, RunOutsidePartitions] = {}
    attempts = 0
    while True:
        kept_creations = [c for c in creations if c.run_id not in outside]
        kept_events = [p for p in events if p.run_id not in outside]
        days: dict[str, date] = {}
        try:
            with conn.transaction():
                days = _place(conn, kept_creations, kept_events)
                created, conflicts = _create(conn, kept_creations, days)
                fresh = _apply_events(conn, kept_events, days)
                if labels:
                    write_labels(conn, labels)
            return _Applied(created, conflicts, fresh, outside)
        except psycopg.errors.CheckViolation as exc:
            attempts += 1
            found = _outside_partitions(conn, days) if is_missing_partition(exc) else {}
            if not found or attempts == _ATTEMPTS:
                raise
            outside.update(found)


def _place(conn: psycopg.Connection, creations: list[_Creation], events: list[PreparedEvent]) -> dict[str, date]:
    """The partition day of each run: carried by its id, else found (or chosen) near its creation's
    start or its earliest event, under a lock taken in id order (two batches never wait in a ring)."""
    near: dict[str, datetime] = {}
    for p in events:
        near[p.run_id] = min(near.get(p.run_id, p.ts), p.ts)
    for c in reversed(creations):  # the first creation of a run places it, as if sent first
        near[c.run_id] = c.values["started_at"]
    return {run_id: run_day(conn, run_id, near[run_id]) for run_id in sorted(near)}


def _create(
    conn: psycopg.Connection, creations: list[_Creation], days: dict[str, date]
) -> tuple[set[int], dict[int, Conflict]]:
    """Create the runs (the first creation of each), and compare the others with what is stored:
    the same values are a repeat, other values a conflict, as for `POST /api/v1/runs`."""
    if not creations:
        return set(), {}
    first: dict[str, _Creation] = {}
    for c in creations:
        first.setdefault(c.run_id, c)
    rows = [c.values | {"run_day": days[run_id]} for run_id, c in first.items()]
    made = conn.execute(CREATE_RUNS, {"runs": Jsonb(rows)}).fetchall()
    created = {first[str(row["run_id"])].index for row in made}
    others = [c for c in creations if c.index not in created]
    if not others:
        return created, {}
    ids = sorted({c.run_id for c in others})
    stored = conn.execute(
        "SELECT run_id, pipeline, entity, tags FROM runs"
        " WHERE (run_id, run_day) IN (SELECT * FROM unnest(%s::uuid[], %s::date[]))",
        (ids, [days[run_id] for run_id in ids]),
    ).fetchall()
    by_id = {str(row["run_id"]): row for row in stored}
    conflicts = {c.index: error for c in others if (error := conflict(c.run_id, by_id[c.run_id], c.data))}
    return created, conflicts


def _apply_events(conn: psycopg.Connection, events: list[PreparedEvent], days: dict[str, date]) -> list[PreparedEvent]:
    """The events of every run: the ledger, each run's row and the first round of steps in one
    statement; the later rounds and the artifact rows after it. The events applied for the first time."""
    if not events:
        return []
    by_run: dict[str, list[PreparedEvent]] = {}
    for p in events:
        by_run.setdefault(p.run_id, []).append(p)
        if p.step_row is not None:
            p.step_row.update(run_id=p.run_id, run_day=days[p.run_id])
    rounds = step_rounds([p.step_row for p in events if p.step_row], key=itemgetter("run_id", "step_id"))
    # Sorted, so that concurrent batches lock ledger entries and rows in the same order.
    keys = sorted((p.run_id, p.event_id) for p in events)
    params = {
        "run_ids": uuid_array([run_id for run_id, _ in keys]),
        "event_ids": uuid_array([event_id for _, event_id in keys]),
        "runs": Jsonb([{"run_id": r, "run_day": days[r], **run_fragment(by_run[r])} for r in sorted(by_run)]),
        "rows": Jsonb(rounds[0] if rounds else []),
    }
    new = {(str(row["run_id"]), str(row["event_id"])) for row in conn.execute(APPLY_RUNS_BATCH, params).fetchall()}
    fresh = [p for p in events if (p.run_id, p.event_id) in new]
    fresh_rows = {id(p.step_row) for p in fresh if p.step_row}
    for later in rounds[1:]:
        rows = [row for row in later if id(row) in fresh_rows]
        if rows:
            conn.execute(UPSERT_STEPS_OF_RUNS, {"rows": Jsonb(rows)})
    artifacts = [row | {"run_id": p.run_id, "run_day": days[p.run_id]} for p in fresh for row in p.artifact_rows]
    if artifacts:
        conn.execute(INSERT_ARTIFACTS_OF_RUNS, (Jsonb(latest_per_key(artifacts, "artifact_id")),))
    return fresh


def _outside_partitions(conn: psycopg.Connection, days: dict[str, date]) -> dict[str, RunOutsidePartitions]:
    """The runs whose day some partitioned table holds no partition for, each with its 422."""
    held = [partitions(conn, table) for table in PARTITIONED]

    def placed(day: date) -> bool:
        return day == KEPT_DAY or all(any(p.lower and p.lower <= day < p.upper for p in table) for table in held)

    return {run_id: outside_partitions(conn, run_id, day) for run_id, day in days.items() if not placed(day)}

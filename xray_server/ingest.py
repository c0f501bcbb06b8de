"""Write runs and event batches into the hot tier.

Rules this module owns:
- Replaying a batch, or receiving events out of order or twice, leaves one final state:
  each event_id is applied once per run (the `ingested_events` ledger), and the step
  merge below is order-independent (earliest start, latest end wins, ties by event id).
- Events for a run never created still land: the run is made implicitly.
- A batch is atomic: usually one statement (ledger, run and steps together), whatever its
  size; more only when it holds a step several times or artifacts, and then one transaction.
- Valid events beside invalid ones are stored; the invalid ones are reported one by one.
"""
from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError
from psycopg.types.json import Jsonb

from xray_sdk.capture import bound_json
from xray_sdk.limits import DEFAULT_LIMITS
from xray_sdk.vocabulary import STANDARD_METRICS

from .db import Database
from .errors import Conflict, ValidationFailed, parse_uuid
from .artifact_writer import ArtifactWriter
from .events import ArtifactPolicy, EventRejected, PreparedEvent, prepare
from .schemas.events import BatchSchema, load_event
from .schemas.runs import RunCreateSchema

_batch_schema = BatchSchema()
_run_schema = RunCreateSchema()


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
        """The response body."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "contract_violations": self.contract_violations,
            "truncated": self.truncated,
            "artifacts": self.artifacts,
        }


def parse_run_id(run_id: str) -> str:
    """The canonical form of a run id from a URL, or a 400 naming `run_id`."""
    return parse_uuid(run_id, "run_id", "such as the one POST /api/v1/runs returned")


# --------------------------------------------------------------------------- runs

_CREATE_RUN = """
INSERT INTO runs AS r (run_id, pipeline, entity, tags, metadata, started_at, implicit)
VALUES (%(run_id)s, %(pipeline)s, %(entity)s, %(tags)s, %(metadata)s, %(started_at)s, false)
ON CONFLICT (run_id) DO UPDATE SET
    pipeline = EXCLUDED.pipeline, entity = EXCLUDED.entity, tags = EXCLUDED.tags,
    metadata = EXCLUDED.metadata, implicit = false,
    started_at = LEAST(r.started_at, EXCLUDED.started_at)
WHERE r.implicit
RETURNING run_id
"""


def create_run(db: Database, payload: Any) -> tuple[str, bool]:
    """Create a run, or fill in one that events created implicitly.

    Returns the run id and whether this call created (or completed) it. Repeating the same
    request is harmless; the same id with a different pipeline, entity or tags is a 409.
    """
    data = _load(_run_schema, payload)
    run_id = str(data["run_id"] or uuid.uuid4())
    metadata, _ = bound_json(data["metadata"], DEFAULT_LIMITS.max_metadata_bytes) if data["metadata"] is not None else (None, False)
    row = {
        "run_id": run_id,
        "pipeline": data["pipeline"],
        "entity": data["entity"],
        "tags": Jsonb(data["tags"]),
        "metadata": Jsonb(metadata) if metadata is not None else None,
        "started_at": data["started_at"] or datetime.now(timezone.utc),
    }
    with db.connection() as conn:
        if conn.execute(_CREATE_RUN, row).fetchone() is not None:
            return run_id, True
        existing = conn.execute(
            "SELECT pipeline, entity, tags FROM runs WHERE run_id = %s", (run_id,)
        ).fetchone()
    mismatched = [key for key in ("pipeline", "entity", "tags") if existing[key] != data[key]]
    if mismatched:
        raise Conflict(
            f"run {run_id} already exists with a different {', '.join(mismatched)}; "
            "use a new run_id for a new run",
            {"run_id": run_id, "fields": mismatched},
        )
    return run_id, False


# --------------------------------------------------------------------------- events

def ingest_events(db: Database, run_id: str, payload: Any, writer: ArtifactWriter | None = None,
                  max_capture: str = "full") -> BatchResult:
    """Validate a batch, apply its valid events to the run atomically, then write the
    artifact payloads with `writer` (after commit: metrics never wait on the cold tier)."""
    run_id = parse_run_id(run_id)
    raw_events = _load(_batch_schema, payload)["events"]
    result = BatchResult()
    policy = ArtifactPolicy(has_store=writer is not None, max_capture=max_capture)
    prepared = _prepare_all(run_id, raw_events, result, policy)
    if not prepared:
        return result
    unique = _first_of_each_event_id(prepared)
    result.duplicates += len(prepared) - len(unique)
    with db.connection() as conn:
        fresh = _apply(conn, run_id, unique)
    result.accepted = len(fresh)
    result.duplicates += len(unique) - len(fresh)
    _report(fresh, result)
    settled = {}
    if writer is not None:
        settled = {o["artifact_id"]: o for o in writer.settle(db, run_id, [a for p in fresh for a in p.pending])}
    for p in fresh:
        for row in p.artifact_rows:
            outcome = settled.get(row["artifact_id"], row)
            result.artifacts.append({"index": p.index, "name": row["name"], "artifact_id": row["artifact_id"],
                                     "status": outcome["status"], "drop_reason": outcome["drop_reason"]})
    return result


def _prepare_all(run_id: str, raw_events: list[Any], result: BatchResult,
                 policy: ArtifactPolicy) -> list[PreparedEvent]:
    prepared = []
    for index, raw in enumerate(raw_events):
        try:
            prepared.append(prepare(run_id, index, load_event(raw), policy=policy))
        except ValidationError as exc:
            result.rejected.append(_rejection(index, raw, _as_field_errors(exc.messages)))
        except EventRejected as exc:
            result.rejected.append(_rejection(index, raw, exc.fields))
    return prepared


def _rejection(index: int, raw: Any, errors: dict[str, Any]) -> dict[str, Any]:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return {"index": index, "event_id": event_id if isinstance(event_id, str) else None, "errors": errors}


def _first_of_each_event_id(prepared: list[PreparedEvent]) -> list[PreparedEvent]:
    seen: dict[str, PreparedEvent] = {}
    for p in prepared:
        seen.setdefault(p.event_id, p)
    return list(seen.values())


def _report(fresh: list[PreparedEvent], result: BatchResult) -> None:
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
    rounds = _rounds([p.step_row for p in unique if p.step_row])
    has_artifacts = any(p.artifact_rows for p in unique)
    with conn.transaction() if len(rounds) > 1 or has_artifacts else nullcontext():
        new_ids = _apply_first_round(conn, run_id, unique, rounds[0] if rounds else [])
        fresh = [p for p in unique if p.event_id in new_ids]
        fresh_rows = {id(p.step_row) for p in fresh if p.step_row}
        for later in rounds[1:]:
            _upsert_steps(conn, run_id, [row for row in later if id(row) in fresh_rows])
        _insert_artifacts(conn, run_id, [a for p in fresh for a in p.artifact_rows])
    return fresh


def _apply_first_round(conn, run_id: str, unique: list[PreparedEvent], rows: list[dict[str, Any]]) -> set[str]:
    finishes = [p for p in unique if p.finish]
    # Only the batch's latest run_finish can win against the stored one.
    finish = max(finishes, key=lambda p: (p.ts, uuid.UUID(p.event_id))) if finishes else None
    params = {
        "run_id": run_id,
        # Sorted so that concurrent batches lock ledger entries in the same order.
        "event_ids": sorted(p.event_id for p in unique),
        "earliest": min(p.ts for p in unique),
        "rows": Jsonb(rows),
        "f_status": None, "f_outcome": None, "f_error": None, "f_ts": None, "f_event_id": None,
    }
    if finish is not None:
        outcome, error = finish.finish["outcome"], finish.finish["error"]
        params.update(f_status=finish.finish["status"], f_ts=finish.ts, f_event_id=finish.event_id,
                      f_outcome=None if outcome is None else Jsonb(outcome),
                      f_error=None if error is None else Jsonb(error))
    return {str(row["event_id"]) for row in conn.execute(_APPLY, params).fetchall()}


# The merge rules, as SQL over the stored row `s` and the incoming fragment EXCLUDED. Each
# picks a winner by a total order, so the final row does not depend on arrival order.
_END_WINS = (
    "(EXCLUDED.end_event_id IS NOT NULL AND (s.end_event_id IS NULL OR "
    "(EXCLUDED.ended_at, EXCLUDED.end_event_id) > (s.ended_at, s.end_event_id)))"
)
_START_WINS = (
    "(EXCLUDED.start_event_id IS NOT NULL AND (s.start_event_id IS NULL OR "
    "(EXCLUDED.start_ts, EXCLUDED.start_event_id) < (s.start_ts, s.start_event_id)))"
)
# A step_start's input beats a step_end's; among starts the earliest, among ends the latest.
_INPUT_WINS = (
    "(EXCLUDED.input IS NOT NULL AND (s.input IS NULL"
    " OR (EXCLUDED.input_from_start AND NOT s.input_from_start)"
    " OR (EXCLUDED.input_from_start AND s.input_from_start"
    "     AND (EXCLUDED.input_ts, EXCLUDED.input_event_id) < (s.input_ts, s.input_event_id))"
    " OR (NOT EXCLUDED.input_from_start AND NOT s.input_from_start"
    "     AND (EXCLUDED.input_ts, EXCLUDED.input_event_id) > (s.input_ts, s.input_event_id))))"
)
_IDENTITY_COLUMNS = ("seq", "name", "step_type", "parent_step_id")
_END_COLUMNS = (
    "status", "ended_at", *STANDARD_METRICS, "metrics", "output", "why", "error", "contract_violations",
    "rejections", "end_event_id",
)
_START_COLUMNS = ("start_ts", "start_event_id")
_INPUT_COLUMNS = ("input", "input_from_start", "input_ts", "input_event_id")
# The columns a step fragment carries, with their SQL types (for jsonb_to_recordset).
STEP_COLUMNS = (
    ("step_id", "uuid"), ("parent_step_id", "uuid"), ("seq", "integer"), ("name", "text"),
    ("step_type", "text"), ("status", "text"), ("started_at", "timestamptz"), ("ended_at", "timestamptz"),
    ("candidates_in", "bigint"), ("candidates_out", "bigint"), ("drop_ratio", "double precision"),
    ("model", "text"), ("temperature", "double precision"), ("metrics", "jsonb"), ("input", "jsonb"),
    ("output", "jsonb"), ("why", "text"), ("error", "jsonb"), ("contract_violations", "text[]"),
    ("rejections", "jsonb"),
    ("start_ts", "timestamptz"), ("start_event_id", "uuid"), ("end_event_id", "uuid"),
    ("input_from_start", "boolean"), ("input_ts", "timestamptz"), ("input_event_id", "uuid"),
)


def _pick(column: str, condition: str) -> str:
    return f"    {column} = CASE WHEN {condition} THEN EXCLUDED.{column} ELSE s.{column} END"


def _steps_merge(where: str = "true") -> str:
    """The step merge over the fragments in %(rows)s that satisfy `where`."""
    return "\n".join([
        f"INSERT INTO steps AS s (run_id, {', '.join(c for c, _ in STEP_COLUMNS)})",
        f"SELECT %(run_id)s, {', '.join('f.' + c for c, _ in STEP_COLUMNS)}",
        f"FROM jsonb_to_recordset(%(rows)s) AS f({', '.join(f'{c} {t}' for c, t in STEP_COLUMNS)})",
        f"WHERE {where}",
        "ORDER BY f.step_id",
        "ON CONFLICT (run_id, step_id) DO UPDATE SET",
        "    started_at = LEAST(s.started_at, EXCLUDED.started_at),",
        ",\n".join(
            [_pick(c, f"{_END_WINS} OR (s.end_event_id IS NULL AND {_START_WINS})") for c in _IDENTITY_COLUMNS]
            + [_pick(c, _END_WINS) for c in _END_COLUMNS]
            + [_pick(c, _START_WINS) for c in _START_COLUMNS]
            + [_pick(c, _INPUT_WINS) for c in _INPUT_COLUMNS]
        ),
    ])


_UPSERT_STEPS = _steps_merge()

# The latest run_finish wins (ties by event id), whatever order they arrive in; an implicit
# run's start moves to its earliest event.
_FINISH_WINS = (
    "(EXCLUDED.finish_event_id IS NOT NULL AND (r.finish_event_id IS NULL"
    " OR (r.ended_at, r.finish_event_id) < (EXCLUDED.ended_at, EXCLUDED.finish_event_id)))"
)
_EARLIER_START = "(r.implicit AND EXCLUDED.started_at < r.started_at)"
_RUN_MERGE = "\n".join([
    "INSERT INTO runs AS r (run_id, implicit, started_at, status, outcome, error, ended_at, finish_event_id)",
    "VALUES (%(run_id)s, true, %(earliest)s, coalesce(%(f_status)s, 'running'), %(f_outcome)s, %(f_error)s,",
    "        %(f_ts)s, %(f_event_id)s)",
    "ON CONFLICT (run_id) DO UPDATE SET",
    f"    started_at = CASE WHEN {_EARLIER_START} THEN EXCLUDED.started_at ELSE r.started_at END,",
    ",\n".join(f"    {c} = CASE WHEN {_FINISH_WINS} THEN EXCLUDED.{c} ELSE r.{c} END"
               for c in ("status", "outcome", "error", "ended_at", "finish_event_id")),
    f"WHERE {_EARLIER_START} OR {_FINISH_WINS}",
])

# Data-modifying CTEs all run, to completion, in one statement: the ledger says which
# events are new, and only their step fragments are merged (replays write nothing).
_APPLY = "\n".join([
    "WITH fresh AS (",
    "    INSERT INTO ingested_events (run_id, event_id)",
    "    SELECT %(run_id)s, e FROM unnest(%(event_ids)s::uuid[]) AS e ORDER BY e",
    "    ON CONFLICT DO NOTHING RETURNING event_id",
    "), run AS (",
    _RUN_MERGE,
    "    RETURNING 1",
    "), merged AS (",
    _steps_merge("coalesce(f.end_event_id, f.start_event_id) IN (SELECT event_id FROM fresh)"),
    "    RETURNING 1",
    ")",
    "SELECT event_id FROM fresh",
])


def _upsert_steps(conn, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Merge step fragments. One statement cannot touch a row twice, so a batch holding
    several events of one step is applied in rounds: the n-th event of each step in round n."""
    for round_rows in _rounds(rows):
        conn.execute(_UPSERT_STEPS, {"run_id": run_id, "rows": Jsonb(round_rows)})


def _rounds(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for row in rows:
        n = seen.get(row["step_id"], 0)
        seen[row["step_id"]] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return rounds


def _insert_artifacts(conn, run_id: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn.execute(
        """
        INSERT INTO artifacts AS a (run_id, artifact_id, step_id, name, capture, content_type,
                               status, drop_reason, store_key, size_bytes, sha256, event_ts, event_id)
        SELECT %s, f.artifact_id, f.step_id, f.name, f.capture, f.content_type,
               f.status, f.drop_reason, f.store_key, f.size_bytes, f.sha256, f.event_ts, f.event_id
        FROM jsonb_to_recordset(%s) AS f(artifact_id uuid, step_id uuid, name text, capture text,
             content_type text, status text, drop_reason text, store_key text, size_bytes bigint, sha256 text,
             event_ts timestamptz, event_id uuid)
        ORDER BY f.artifact_id
        ON CONFLICT (run_id, artifact_id) DO UPDATE SET
            capture = EXCLUDED.capture, content_type = EXCLUDED.content_type, status = EXCLUDED.status,
            drop_reason = EXCLUDED.drop_reason, store_key = EXCLUDED.store_key,
            size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
            event_ts = EXCLUDED.event_ts, event_id = EXCLUDED.event_id
        -- The latest step_end describing an artifact wins, as for the step itself.
        WHERE (EXCLUDED.event_ts, EXCLUDED.event_id) > (a.event_ts, a.event_id)
        """,
        (run_id, Jsonb(_one_per_key(rows, "artifact_id"))),
    )


def _one_per_key(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The latest row per key: one statement may not touch a row twice."""
    def rank(row: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(row["event_ts"]), uuid.UUID(row["event_id"])

    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = latest.get(row[key])
        if current is None or rank(row) > rank(current):
            latest[row[key]] = row
    return list(latest.values())


# --------------------------------------------------------------------------- helpers

def _load(schema, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationFailed({"body": ["must be a JSON object"]})
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise ValidationFailed(_as_field_errors(exc.messages)) from None


def _as_field_errors(messages: Any) -> dict[str, Any]:
    """Marshmallow's messages with `_schema` renamed to what it is about."""
    if isinstance(messages, dict):
        return {("body" if key == "_schema" else str(key)): value for key, value in messages.items()}
    return {"body": messages if isinstance(messages, list) else [str(messages)]}


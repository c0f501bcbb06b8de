"""Creating a run: idempotent for a client-chosen id; a 409 when the same id names another run."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from xray_sdk.contract.bounds import bound_json
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.contract.run_ids import with_day
from xray_server.errors import Conflict
from xray_server.ingest.bodies import load_body
from xray_server.ingest.placement import is_missing_partition, outside_partitions, run_day
from xray_server.schemas.runs import RunCreateSchema
from xray_server.storage.partitions import carried_day
from xray_server.storage.pool import Database

_run_schema = RunCreateSchema()

# Fills in a run that events made implicitly; changes nothing of a run already created.
_CREATE_MERGE = """
ON CONFLICT (run_id, run_day) DO UPDATE SET
    pipeline = EXCLUDED.pipeline, entity = EXCLUDED.entity, tags = EXCLUDED.tags,
    metadata = EXCLUDED.metadata, implicit = false,
    started_at = LEAST(r.started_at, EXCLUDED.started_at)
WHERE r.implicit
RETURNING run_id
"""
_INSERT_RUN = "\nINSERT INTO runs AS r (run_id, run_day, pipeline, entity, tags, metadata, started_at, implicit)"
_CREATE_RUN = (
    _INSERT_RUN
    + """
VALUES (%(run_id)s, %(run_day)s, %(pipeline)s, %(entity)s, %(tags)s, %(metadata)s, %(started_at)s, false)"""
    + _CREATE_MERGE
)
# The creations of a multi-run batch in one statement, one row each in %(runs)s.
CREATE_RUNS = (
    _INSERT_RUN
    + """
SELECT f.run_id, f.run_day, f.pipeline, f.entity, f.tags, f.metadata, f.started_at, false
FROM jsonb_to_recordset(%(runs)s) AS f(run_id uuid, run_day date, pipeline text, entity text, tags jsonb,
     metadata jsonb, started_at timestamptz)
ORDER BY f.run_id"""
    + _CREATE_MERGE
)


def run_values(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What a validated creation writes, but its day: the id (made, carrying its day, when the
    client gave none), the bounded metadata, and the start (`now` when not given)."""
    started_at = data["started_at"] or now
    metadata = data["metadata"]
    if metadata is not None:
        metadata, _ = bound_json(metadata, DEFAULT_LIMITS.max_metadata_bytes)
    return {
        # A run id the server makes carries the run's day, as the SDK's do (contract/run_ids.py).
        "run_id": str(data["run_id"] or with_day(uuid.uuid4(), started_at)),
        "pipeline": data["pipeline"],
        "entity": data["entity"],
        "tags": data["tags"],
        "metadata": metadata,
        "started_at": started_at,
    }


def conflict(run_id: str, existing: dict[str, Any], data: dict[str, Any]) -> Conflict | None:
    """The 409 for a creation whose id names a run with another pipeline, entity or tags."""
    mismatched = [key for key in ("pipeline", "entity", "tags") if existing[key] != data[key]]
    if not mismatched:
        return None
    return Conflict(
        f"run {run_id} already exists with a different {', '.join(mismatched)}; use a new run_id for a new run",
        {"run_id": run_id, "fields": mismatched},
    )


def create_run(db: Database, payload: Any) -> tuple[str, bool]:
    """Create a run, or fill in one that events created implicitly.

    Returns the run id and whether this call created (or completed) it. Repeating the same
    request is harmless; the same id with a different pipeline, entity or tags is a 409.
    """
    data = load_body(_run_schema, payload)
    values = run_values(data, datetime.now(UTC))
    run_id, started_at = values["run_id"], values["started_at"]
    row = {**values, "tags": Jsonb(values["tags"])}
    row["metadata"] = Jsonb(values["metadata"]) if values["metadata"] is not None else None
    with db.connection() as conn:
        try:
            # Only an id that carries no day needs the lookup, and its lock, in a transaction.
            with conn.transaction() if carried_day(conn, run_id) is None else nullcontext():
                row["run_day"] = run_day(conn, run_id, started_at)
                if conn.execute(_CREATE_RUN, row).fetchone() is not None:
                    return run_id, True
        except psycopg.errors.CheckViolation as exc:
            if "run_day" not in row or not is_missing_partition(exc):
                raise
            raise outside_partitions(conn, run_id, row["run_day"]) from None
        existing = conn.execute(
            "SELECT pipeline, entity, tags FROM runs WHERE run_id = %s AND run_day = %s", (run_id, row["run_day"])
        ).fetchone()
    error = conflict(run_id, existing, data)
    if error is not None:
        raise error
    return run_id, False

"""Creating a run: idempotent for a client-chosen id; a 409 when the same id names another run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from xray_sdk.contract.bounds import bound_json
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.errors import Conflict
from xray_server.ingest.bodies import load_body
from xray_server.schemas.runs import RunCreateSchema
from xray_server.storage.pool import Database

_run_schema = RunCreateSchema()

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
    data = load_body(_run_schema, payload)
    run_id = str(data["run_id"] or uuid.uuid4())
    metadata, _ = (
        bound_json(data["metadata"], DEFAULT_LIMITS.max_metadata_bytes)
        if data["metadata"] is not None
        else (None, False)
    )
    row = {
        "run_id": run_id,
        "pipeline": data["pipeline"],
        "entity": data["entity"],
        "tags": Jsonb(data["tags"]),
        "metadata": Jsonb(metadata) if metadata is not None else None,
        "started_at": data["started_at"] or datetime.now(UTC),
    }
    with db.connection() as conn:
        if conn.execute(_CREATE_RUN, row).fetchone() is not None:
            return run_id, True
        existing = conn.execute("SELECT pipeline, entity, tags FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    mismatched = [key for key in ("pipeline", "entity", "tags") if existing[key] != data[key]]
    if mismatched:
        raise Conflict(
            f"run {run_id} already exists with a different {', '.join(mismatched)}; use a new run_id for a new run",
            {"run_id": run_id, "fields": mismatched},
        )
    return run_id, False

"""Run labels: a judgement about a run that arrives after it, from a reviewer or a downstream
check, as a label and optionally a number. One row per (run, source): the latest judgement of
each source wins, whatever the order in which they arrive, and repeating one changes nothing.
Many runs are judged in one request (`record_labels`): each judgement is checked on its own, and
the valid ones are kept beside a bad one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from marshmallow import ValidationError

from xray_server.ids import parse_run_id
from xray_server.ingest.bodies import as_field_errors, load_body
from xray_server.jsonio import iso_utc
from xray_server.schemas.labels import LabelBatchSchema, LabelSchema, RunLabelSchema
from xray_server.schemas.responses import LabelRecordedSchema
from xray_server.schemas.views import projector
from xray_server.storage.pool import Database

_label_schema = LabelSchema()
_run_label_schema = RunLabelSchema()
_batch_schema = LabelBatchSchema()
_recorded_view = projector(LabelRecordedSchema, labeled_at=lambda r: iso_utc(r["labeled_at"]))

# Ties on `at` are broken by the label, value and comment, so that two judgements of the same
# moment give the same final row in either order.
_RECORD_LABEL = """
INSERT INTO run_labels AS l (run_id, source, label, value, comment, labeled_at)
VALUES (%(run_id)s, %(source)s, %(label)s, %(value)s, %(comment)s, %(at)s)
ON CONFLICT (run_id, source) DO UPDATE SET
    label = EXCLUDED.label, value = EXCLUDED.value, comment = EXCLUDED.comment, labeled_at = EXCLUDED.labeled_at
WHERE (EXCLUDED.labeled_at, EXCLUDED.label, coalesce(EXCLUDED.value, '-infinity'), coalesce(EXCLUDED.comment, ''))
    > (l.labeled_at, l.label, coalesce(l.value, '-infinity'), coalesce(l.comment, ''))
"""


def _row(run_id: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "source": data["source"],
        "label": data["label"],
        "value": data["value"],
        "comment": data["comment"],
        "at": data["at"] or now,
    }


def record_label(db: Database, run_id: str, payload: Any) -> dict[str, Any]:
    """Record a judgement of a run; returns the source's current label and whether the run is known
    (a label may arrive before the run's own events; it is kept either way)."""
    row = _row(parse_run_id(run_id), load_body(_label_schema, payload), datetime.now(UTC))
    with db.connection() as conn:
        conn.execute(_RECORD_LABEL, row)
        current = conn.execute(
            "SELECT run_id, source, label, value, comment, labeled_at, "
            "EXISTS (SELECT 1 FROM runs WHERE run_id = %(run_id)s) AS run_known "
            "FROM run_labels WHERE run_id = %(run_id)s AND source = %(source)s",
            row,
        ).fetchone()
    return _recorded_view(current)


def record_labels(db: Database, payload: Any) -> tuple[dict[str, Any], int]:
    """Record many judgements in one transaction: the valid ones are kept, each refused one is
    answered with its index and fields. 200 when all were recorded, 207 when some were refused."""
    rows, refused = load_labels(load_body(_batch_schema, payload)["labels"], datetime.now(UTC))
    if rows:
        with db.connection() as conn, conn.transaction():
            write_labels(conn, rows)
    errors = [{"index": index, "fields": fields} for index, fields in refused]
    return {"recorded": len(rows), "refused": len(errors), "errors": errors}, 207 if errors else 200


def load_labels(items: list[Any], now: datetime) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    """Each judgement of `items` checked on its own: the rows of the valid ones (received `now`),
    and the index and field errors of each refused one."""
    rows, refused = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            refused.append((index, {"body": ["must be a JSON object"]}))
            continue
        try:
            data = _run_label_schema.load(item)
        except ValidationError as exc:
            refused.append((index, as_field_errors(exc.messages)))
            continue
        rows.append(_row(str(data["run_id"]), data, now))
    return rows, refused


def write_labels(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    """Record the rows of `load_labels` in the caller's transaction."""
    with conn.cursor() as cursor:
        cursor.executemany(_RECORD_LABEL, rows)

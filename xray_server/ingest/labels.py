"""Run labels: a judgement about a run that arrives after it, from a reviewer or a downstream
check. One row per (run, source): the latest judgement of each source wins, whatever the order
in which they arrive, and repeating one changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from xray_server.ids import parse_run_id
from xray_server.ingest.bodies import load_body
from xray_server.jsonio import iso_utc
from xray_server.schemas.labels import LabelSchema
from xray_server.schemas.responses import LabelRecordedSchema
from xray_server.schemas.views import projector
from xray_server.storage.pool import Database

_label_schema = LabelSchema()
_recorded_view = projector(LabelRecordedSchema, labeled_at=lambda r: iso_utc(r["labeled_at"]))

# Ties on `at` are broken by the label and comment, so that two judgements of the same moment
# give the same final row in either order.
_RECORD_LABEL = """
INSERT INTO run_labels AS l (run_id, source, label, comment, labeled_at)
VALUES (%(run_id)s, %(source)s, %(label)s, %(comment)s, %(at)s)
ON CONFLICT (run_id, source) DO UPDATE SET
    label = EXCLUDED.label, comment = EXCLUDED.comment, labeled_at = EXCLUDED.labeled_at
WHERE (EXCLUDED.labeled_at, EXCLUDED.label, coalesce(EXCLUDED.comment, ''))
    > (l.labeled_at, l.label, coalesce(l.comment, ''))
RETURNING label
"""


def record_label(db: Database, run_id: str, payload: Any) -> dict[str, Any]:
    """Record a judgement of a run; returns the source's current label and whether the run is known
    (a label may arrive before the run's own events; it is kept either way)."""
    run_id = parse_run_id(run_id)
    data = load_body(_label_schema, payload)
    row = {
        "run_id": run_id,
        "source": data["source"],
        "label": data["label"],
        "comment": data["comment"],
        "at": data["at"] or datetime.now(UTC),
    }
    with db.connection() as conn:
        conn.execute(_RECORD_LABEL, row)
        current = conn.execute(
            "SELECT run_id, source, label, comment, labeled_at, "
            "EXISTS (SELECT 1 FROM runs WHERE run_id = %(run_id)s) AS run_known "
            "FROM run_labels WHERE run_id = %(run_id)s AND source = %(source)s",
            row,
        ).fetchone()
    return _recorded_view(current)

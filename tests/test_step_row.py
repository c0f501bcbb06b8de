"""One definition of the step row: the `steps` table, the merge's column list (`STEP_COLUMNS`, the
types `jsonb_to_recordset` reads the fragments with) and the keys the row builders write must
agree, since a misspelt key becomes a silent NULL in `jsonb_to_recordset`."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from psycopg.rows import dict_row

from tests.support.events import new_id, step_end
from xray_server.ingest.merge import STEP_COLUMNS
from xray_server.ingest.rows import prepare, uuid_text
from xray_server.schemas.events import load_event

# PostgreSQL's names for the short type names the merge uses.
_CANONICAL = {"timestamptz": "timestamp with time zone", "integer": "integer", "bigint": "bigint"}


def test_the_merge_columns_are_the_steps_table_with_its_types(db):
    with db.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
        table = {
            row["name"]: row["type"]
            for row in cursor.execute(
                "SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
                "WHERE attrelid = 'steps'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT IN ('run_id', 'run_day')"
            ).fetchall()
        }
    merged = {name: _CANONICAL.get(sql_type, sql_type) for name, sql_type in STEP_COLUMNS}
    assert merged == table


def test_the_row_builders_write_only_merge_columns_and_between_them_every_one():
    step_id, started = new_id(), "2026-12-02T00:00:00Z"
    start = {"event_id": new_id(), "type": "step_start", "ts": started, "step_id": step_id, "seq": 0}
    start |= {"name": "s", "step_type": "filter", "input": {"q": 1}}
    end = step_end(step_id, 0, "s", "filter", metrics={"candidates_in": 4, "candidates_out": 1, "model": "m"})
    end |= {"why": "w", "output": [1], "rejections": {"r": 3}, "started_at": started}
    rows = [prepare(new_id(), i, load_event(event)).step_row for i, event in enumerate((start, end))]
    columns = {name for name, _ in STEP_COLUMNS}
    assert all(row is not None and set(row) <= columns for row in rows), [sorted(set(r or {}) - columns) for r in rows]
    assert set(rows[0]) | set(rows[1]) == columns


@given(st.uuids(allow_nil=True) | st.just(uuid.UUID(int=2**128 - 1)))
def test_the_fast_uuid_text_is_the_canonical_text(value):
    """The row builders write ids with `uuid_text`: it must be exactly what `str()` writes."""
    assert uuid_text(value) == str(value)

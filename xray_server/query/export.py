"""Export: every row of a filtered query, streamed as CSV or JSON Lines by PostgreSQL's `COPY ...
TO STDOUT`, for a notebook or a spreadsheet (`GET /api/v1/steps/export`, `/runs/export`).

No page, no cursor, no Python per row: the rows leave PostgreSQL already formatted, and the
server passes the blocks on as they come, so an export costs about what `COPY` of the same rows
does and holds one block in memory. A step row carries its run's pipeline, entity, status, tags,
outcome and labels, so that it needs no join on the reader's side.

JSON Lines rows are `row_to_json`'s text, copied in CSV format with a quote and a delimiter that
JSON text never holds (it escapes every control character), so each line is the JSON untouched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from xray_server.query.runs import run_filters
from xray_server.query.steps import check_step_filters, step_filters
from xray_server.query.views import check_window
from xray_server.schemas.queries import RunExportQuery, StepExportQuery
from xray_server.storage.pool import Database

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

# A run's judgements as one cell: `source:label=value`, latest first (a CSV cell, not a structure).
_LABELS = """(SELECT string_agg(
    CASE WHEN l.source = '' THEN '' ELSE l.source || ':' END || l.label
    || CASE WHEN l.value IS NULL THEN '' ELSE '=' || l.value::text END, ' ' ORDER BY l.labeled_at DESC, l.source)
    FROM run_labels l WHERE l.run_id = {run}.run_id) AS labels"""

_STEP_COLUMNS = """s.run_id, s.step_id, s.parent_step_id, s.seq, s.name, s.step_type, s.status, s.started_at, s.ended_at,
    round((extract(epoch FROM s.ended_at - s.started_at) * 1000)::numeric, 3) AS duration_ms,
    s.candidates_in, s.candidates_out, s.drop_ratio, s.model, s.temperature, s.metrics, s.rejections, s.why,
    s.contract_violations, r.pipeline, r.entity, r.status AS run_status, r.tags, r.outcome, """

_RUN_COLUMNS = """r.run_id, r.pipeline, r.entity, r.status, r.started_at, r.ended_at,
    round((extract(epoch FROM r.ended_at - r.started_at) * 1000)::numeric, 3) AS duration_ms,
    r.tags, r.metadata, r.outcome, r.error, """

# JSON text holds no control character unescaped: these never need quoting, and no line is split.
_JSONL_COPY = "COPY ({}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
_CSV_COPY = "COPY ({}) TO STDOUT (FORMAT csv, HEADER)"


def export_steps(db: Database, q: StepExportQuery) -> Iterator[bytes]:
    """The steps matching `q` (its limit and cursor aside), newest first, as blocks of `q.format`."""
    check_window(q.since, q.until)
    check_step_filters(q)
    return _stream(db, *steps_copy(q))


def export_runs(db: Database, q: RunExportQuery) -> Iterator[bytes]:
    """The runs matching `q` (its limit and cursor aside), newest first, as blocks of `q.format`."""
    check_window(q.since, q.until)
    return _stream(db, *runs_copy(q))


def steps_copy(q: StepExportQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """The `COPY` statement of a steps export, and its parameters."""
    where, params = step_filters(replace(q, cursor=None))
    select = sql.SQL(
        "SELECT "
        + _STEP_COLUMNS
        + _LABELS.format(run="r")
        + " FROM steps s JOIN runs r ON r.run_id = s.run_id AND r.run_day = s.run_day "
        "WHERE {} ORDER BY s.started_at DESC, s.run_id DESC, s.step_id DESC"
    ).format(sql.SQL(" AND ").join(where))
    return _copy_of(select, q.format), params


def runs_copy(q: RunExportQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """The `COPY` statement of a runs export, and its parameters."""
    where, params = run_filters(q, alias="r")
    select = sql.SQL(
        "SELECT "
        + _RUN_COLUMNS
        + _LABELS.format(run="r")
        + " FROM runs r WHERE {} ORDER BY r.started_at DESC, r.run_id DESC"
    ).format(sql.SQL(" AND ").join(where))
    return _copy_of(select, q.format), params


def _copy_of(select: sql.Composable, fmt: str) -> sql.Composed:
    if fmt == "jsonl":
        return sql.SQL(_JSONL_COPY).format(sql.SQL("SELECT row_to_json(x) FROM ({}) x").format(select))
    return sql.SQL(_CSV_COPY).format(select)


def _stream(db: Database, statement: sql.Composed, params: dict[str, Any]) -> Iterator[bytes]:
    # COPY takes no parameters: they are bound into the statement's text here, by the driver's
    # own quoting (a client-side cursor's `mogrify`), never by formatting strings. Done before the
    # first block, so that a statement PostgreSQL refuses is an error, not a cut stream.
    with db.connection() as conn:
        text = psycopg.ClientCursor(conn).mogrify(statement, params)

    def blocks() -> Iterator[bytes]:
        with db.connection() as conn, conn.cursor() as cursor, cursor.copy(text) as copy:
            for block in copy:
                yield bytes(block)

    return blocks()

"""Retention of the hot tier by whole partitions: never a bulk DELETE on the tables ingest writes.

A partition whose days all lie before the window is detached and dropped, artifacts, steps and
runs together, after the cold-tier objects its artifact rows name are deleted from the store
(when one cannot be, the drop waits for the next pass: no object is orphaned). Judged runs (a
run with a label) are first copied into the kept partition, where they stay for a second, longer
window; the runs kept past that one are few, and are deleted row by row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

from xray_server.storage.partitions import DROP_ORDER, KEPT_DAY, PARTITIONED, drop_partition, partitions, row_fields
from xray_server.storage.pool import Database

log = logging.getLogger(__name__)

_LOCK_KEY = 0x58524159_0005  # "XRAY", retention
# Cold-tier objects deleted per round trip to PostgreSQL.
OBJECT_BATCH = 500
_JUDGED = "SELECT run_id FROM run_labels"


@dataclass
class RetentionReport:
    """What one pass did (or, in a dry run, would do)."""

    cutoff: date
    dropped: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)
    runs_kept: int = 0
    kept_runs_expired: int = 0
    objects_deleted: int = 0
    dry_run: bool = False


def apply_retention(
    db: Database,
    *,
    today: date,
    keep_days: float,
    judged_days: float = 0.0,
    delete_object: Callable[[str], None] | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Drop the partitions older than `keep_days`, keeping judged runs for `judged_days` (when
    longer), and delete their cold objects with `delete_object` (None: no store)."""
    cutoff = today - timedelta(days=keep_days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    judged_cutoff = today - timedelta(days=judged_days) if judged_days > keep_days else None
    with db.connection() as conn:
        expired = [p for p in partitions(conn, "runs") if p.upper <= cutoff]
    for runs_partition in expired:
        suffix = runs_partition.name.removeprefix("runs")
        if dry_run:
            report.dropped.append(runs_partition.name)
            continue
        with db.connection() as conn:
            if judged_cutoff is not None and runs_partition.upper > judged_cutoff:
                report.runs_kept += _keep_judged(conn, suffix)
            deleted, failed = _delete_objects(conn, f"artifacts{suffix}", delete_object)
            report.objects_deleted += deleted
            if failed:
                log.warning("retention: %d objects of %s could not be deleted; drop postponed", failed, suffix)
                report.postponed.append(runs_partition.name)
                continue
            _drop(conn, suffix)
        report.dropped.append(runs_partition.name)
    if not dry_run:
        with db.connection() as conn:
            expired_kept, deleted = _expire_kept(conn, judged_cutoff or cutoff, delete_object)
        report.kept_runs_expired += expired_kept
        report.objects_deleted += deleted
    return report


def _keep_judged(conn: psycopg.Connection, suffix: str) -> int:
    """Copy the judged runs of one partition, with their steps and artifact rows, into the kept
    partition; how many runs. Repeating it copies nothing twice."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        copied = 0
        for table in PARTITIONED:
            columns = _columns(conn, table)
            source = [sql.Literal(KEPT_DAY) if c == "run_day" else sql.Identifier(c) for c in columns]
            statement = sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} WHERE run_id IN ({}) ON CONFLICT DO NOTHING"
            ).format(
                sql.Identifier(f"{table}_kept"),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(source),
                sql.Identifier(f"{table}{suffix}"),
                sql.SQL(_JUDGED),
            )
            rowcount = conn.execute(statement).rowcount
            if table == "runs":
                copied = rowcount
    return copied


def _delete_objects(
    conn: psycopg.Connection, table: str, delete_object: Callable[[str], None] | None
) -> tuple[int, int]:
    """Delete the stored objects the rows of `table` name, except those a kept run still names;
    (deleted, failed)."""
    if delete_object is None:
        return 0, 0
    rows = conn.execute(
        sql.SQL(
            "SELECT a.store_key FROM {} a WHERE a.status = 'stored' AND a.store_key IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM artifacts_kept k WHERE k.store_key = a.store_key)"
        ).format(sql.Identifier(table))
    ).fetchall()
    return _delete_each(rows, delete_object)


def _delete_each(rows: list[Any], delete_object: Callable[[str], None]) -> tuple[int, int]:
    """Delete the object each row's `store_key` names; (deleted, failed). A store's own error is
    counted, never raised: the caller decides what a failure holds back."""
    deleted = failed = 0
    for row in rows:
        try:
            delete_object(row_fields(row, "store_key")[0])
            deleted += 1
        except Exception as exc:  # the store's own errors, whatever the store
            log.debug("retention: delete failed: %s", type(exc).__name__)
            failed += 1
    return deleted, failed


def _drop(conn: psycopg.Connection, suffix: str) -> None:
    """Detach and drop one day's partitions, children first, and the labels of their runs that
    were not kept (`run_labels` is not partitioned: it holds a row per judged run, few)."""
    conn.execute(
        sql.SQL(
            "DELETE FROM run_labels l USING {} r WHERE l.run_id = r.run_id"
            " AND NOT EXISTS (SELECT 1 FROM runs_kept k WHERE k.run_id = l.run_id)"
        ).format(sql.Identifier(f"runs{suffix}"))
    )
    for table in DROP_ORDER:
        drop_partition(conn, table, f"{table}{suffix}")


def _expire_kept(
    conn: psycopg.Connection, cutoff: date, delete_object: Callable[[str], None] | None
) -> tuple[int, int]:
    """Delete kept runs that started before `cutoff`, with their objects; (runs, objects)."""
    with conn.transaction():
        conn.execute(
            "CREATE TEMPORARY TABLE xray_expired ON COMMIT DROP AS SELECT run_id FROM runs_kept WHERE started_at < %s",
            (cutoff,),
        )
        count = row_fields(conn.execute("SELECT count(*) AS n FROM xray_expired").fetchone(), "n")[0]
        if not count:
            return 0, 0
        rows = conn.execute(
            "SELECT store_key FROM artifacts_kept WHERE status = 'stored' AND store_key IS NOT NULL"
            " AND run_id IN (SELECT run_id FROM xray_expired)"
        ).fetchall()
        # Kept rows go even when an object could not be deleted: a stray object is gc's to find.
        deleted = _delete_each(rows, delete_object)[0] if delete_object is not None else 0
        for table in (*(f"{t}_kept" for t in DROP_ORDER), "run_labels"):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE run_id IN (SELECT run_id FROM xray_expired)").format(
                    sql.Identifier(table)
                )
            )
    return int(count), deleted


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum",
        (table,),
    ).fetchall()
    return [row_fields(row, "attname")[0] for row in rows]

"""Closed days' indexes rebuilt packed: the hot tier's bytes per step after the day is over.

Ingest fills a day's B-trees out of key order: the primary key by random run ids, and the
cross-run index `(step_type, started_at, ...)` at the end of each step type's range, which is
not the index's last page, so its pages split in half and stay half full. Once a day is closed
(no run of that day still writing, `SETTLE` after its end), its partitions see almost no writes
again; rebuilding their indexes then packs them at their fill factor, about a third fewer bytes
for the same rows (BENCHMARKS.md, "Months of data"), and the reads of that day scan fewer pages.

The rebuild is `REINDEX TABLE CONCURRENTLY` (PostgreSQL 12+): ingest and reads go on; a day's
indexes are built beside the old ones and swapped. A partition is claimed before and marked
after with its table comment, so that one worker compacts it, once; a claim older than
`CLAIM_HOURS` (a worker that died mid-way) is taken over, after the rebuild it left half made
(an invalid `_ccnew` index) is dropped."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from xray_server.storage.partitions import PARTITIONED, partitions, row_fields
from xray_server.storage.pool import Database

log = logging.getLogger(__name__)

_LOCK_KEY = 0x58524159_0006  # "XRAY", compaction
# A day is compacted once it has been over this long: runs that began before midnight and still
# write their steps into it are done by then.
SETTLE = timedelta(days=1)
CLAIM_HOURS = 6
_DONE = "xray: compacted"
_CLAIMED = "xray: compacting since "


def compact_closed(db: Database, today: date) -> list[str]:
    """Rebuild the indexes of the closed days' partitions not yet compacted, oldest first; the
    partitions compacted. The upgraded rows' partition (`_before`) and the kept runs' are left as
    they are: they were built whole, not filled out of order."""
    with db.connection() as conn:
        due = [
            p.name.removeprefix("runs")
            for p in partitions(conn, "runs")
            if p.name != "runs_before" and p.upper + SETTLE <= today
        ]
    compacted: list[str] = []
    for suffix in due:
        with db.connection() as conn:
            for name in (f"{table}{suffix}" for table in PARTITIONED):
                if _claim(conn, name):
                    _rebuild(conn, name)
                    compacted.append(name)
    return compacted


def _claim(conn: psycopg.Connection, name: str) -> bool:
    """Mark `name` as being compacted by this caller; False when it is done or another holds it."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class') AS v", (name,)).fetchone()
        comment = row_fields(row, "v")[0]
        if comment is not None and comment.startswith(_DONE):
            return False
        if comment is not None and comment.startswith(_CLAIMED):
            since = datetime.fromisoformat(comment.removeprefix(_CLAIMED))
            if datetime.now(UTC) - since < timedelta(hours=CLAIM_HOURS):
                return False
        _comment(conn, name, f"{_CLAIMED}{datetime.now(UTC).isoformat()}")
    return True


def _rebuild(conn: psycopg.Connection, name: str) -> None:
    """Rebuild every index of `name` (autocommit: CONCURRENTLY cannot run in a transaction),
    after dropping what an interrupted rebuild left, then mark it done."""
    for row in conn.execute(
        "SELECT i.relname AS v FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = to_regclass(%s) AND NOT x.indisvalid AND i.relname LIKE '%%\\_ccnew%%'",
        (name,),
    ).fetchall():
        leftover = row_fields(row, "v")[0]
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(leftover)))
    conn.execute(sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(sql.Identifier(name)))
    _comment(conn, name, f"{_DONE} {datetime.now(UTC):%Y-%m-%d}")
    log.info("compaction: %s rebuilt", name)


def _comment(conn: psycopg.Connection, name: str, text: str) -> None:
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))

"""Bring a database's schema up to date, safely from several workers at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from xray_server.storage.partitions import ensure_ahead, partition_ledger, partition_tables, unlog_ledger

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
# Every worker runs this at start: the lock makes the second one wait, then find nothing to do.
# A transaction-scoped lock is released at commit, so it also works behind transaction poolers.
_LOCK_KEY = 0x58524159  # "XRAY"

# Version N is applied when the database is below N. Version 1 is schema.sql; later
# changes go here as (version, sql) pairs, never as edits to what already shipped.
MIGRATIONS: list[tuple[int, str | Callable[[psycopg.Connection], None]]] = [
    # Tag filters (`tag=key:value` on /runs and /steps) by containment, served by a GIN index.
    (2, "CREATE INDEX IF NOT EXISTS runs_tags_idx ON runs USING gin (tags jsonb_path_ops)"),
    # Run labels: judgements that arrive after a run, one per (run, source), the latest winning.
    (
        3,
        """
        CREATE TABLE IF NOT EXISTS run_labels (
            run_id     uuid NOT NULL,
            source     text NOT NULL DEFAULT '',
            label      text NOT NULL,
            comment    text,
            labeled_at timestamptz NOT NULL,
            PRIMARY KEY (run_id, source)
        );
        CREATE INDEX IF NOT EXISTS run_labels_label_idx ON run_labels (label, run_id);
    """,
    ),
    # A judgement may be a number (a reviewer's 1 to 5, a judge's 0.3, a click) beside its label.
    (4, "ALTER TABLE run_labels ADD COLUMN IF NOT EXISTS value double precision"),
    # Outcome and metadata filters (`outcome=key:value`, `metadata=key:value`) by containment.
    (
        5,
        """
        CREATE INDEX IF NOT EXISTS runs_outcome_idx ON runs USING gin (outcome jsonb_path_ops);
        CREATE INDEX IF NOT EXISTS runs_metadata_idx ON runs USING gin (metadata jsonb_path_ops);
    """,
    ),
    # The ledger is pruned by age: a BRIN index (rows arrive in time order) finds the old ones for
    # a few kilobytes, where a B-tree would add a tenth to the ledger's size.
    (6, "CREATE INDEX IF NOT EXISTS ingested_events_received_idx ON ingested_events USING brin (received_at)"),
    # Runs, steps and artifact rows partitioned by the run's day, in place (storage/partitions.py).
    (7, lambda conn: partition_tables(conn, datetime.now(UTC).date())),
    # The ingest ledger partitioned by the day an event was received, pruned by dropping days.
    (8, lambda conn: partition_ledger(conn, datetime.now(UTC).date())),
    # The ledger's rows need no WAL: a replay after a crash is applied again and changes nothing.
    (9, unlog_ledger),
]

LATEST_VERSION = max([1, *(version for version, _ in MIGRATIONS)])
PARTITIONED_SINCE = 8


def current_version(conn: psycopg.Connection) -> int:
    """The schema version recorded in the database, 0 if X-Ray's schema is absent."""
    row = conn.execute("SELECT to_regclass('xray_schema_version') IS NOT NULL AS present").fetchone()
    if not _first(row):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) AS version FROM xray_schema_version").fetchone()
    return int(_first(row))


def migrate(conn: psycopg.Connection, *, partition_days: int = 1, up_to: int = LATEST_VERSION) -> int:
    """Apply schema.sql and any later migration the database lacks (up to version `up_to`), and
    create the partitions due in the next days (`partition_days` wide); return the final version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        version = current_version(conn)
        if version < 1:
            log.info("applying schema version 1 from %s", SCHEMA_PATH.name)
            conn.execute(SCHEMA_PATH.read_text(encoding="utf-8"))
            version = 1
        for target, sql in MIGRATIONS:
            if version < target <= up_to:
                log.info("applying schema migration %d", target)
                if callable(sql):
                    sql(conn)
                else:
                    conn.execute(sql)
                conn.execute("INSERT INTO xray_schema_version (version) VALUES (%s)", (target,))
                version = target
    if version >= PARTITIONED_SINCE:
        ensure_ahead(conn, datetime.now(UTC).date(), partition_days)
    return version


def _first(row: object) -> object:
    if isinstance(row, dict):
        return next(iter(row.values()))
    return row[0]  # type: ignore[index]

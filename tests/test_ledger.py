"""The ingest ledger prunes itself past its horizon, and a replay older than the horizon changes
nothing: every merge rule is order-free and keyed by its event. And a worker's upkeep has one owner
that stops it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.databases import throwaway_database
from tests.support.events import competitor_run, new_id
from xray_server import ingest
from xray_server.ingest.ledger import prune_ledger
from xray_server.runtime.background import Background, Job
from xray_server.runtime.config import load_settings
from xray_server.storage.migrations import migrate
from xray_server.storage.partitions import partitions
from xray_server.storage.pool import Database


def stored(db, run_id):
    """Everything stored of a run, as comparable values."""
    with db.connection() as conn:
        run = conn.execute("SELECT * FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        steps = conn.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
        artifacts = conn.execute("SELECT * FROM artifacts WHERE run_id = %s ORDER BY name", (run_id,)).fetchall()
        ledger = conn.execute("SELECT count(*) AS n FROM ingested_events WHERE run_id = %s", (run_id,)).fetchone()["n"]
    return run, steps, artifacts, ledger


@pytest.fixture()
def own_db(pg_server_url):
    """A database of its own: pruning drops whole days of the ledger, every run's events of them."""
    with throwaway_database(pg_server_url, "xray_ledger") as url:
        if url is None:
            pytest.skip("this PostgreSQL does not let the tests create a database")
        with psycopg.connect(url) as conn:
            migrate(conn)
        database = Database(url, load_settings({}, database_url=url, pool_min_size=1, pool_max_size=2))
        yield database
        database.close()


def test_the_ledger_drops_its_days_past_the_horizon_and_keeps_the_others(own_db):
    run_id = new_id()
    ingest.create_run(own_db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    ingest.ingest_events(own_db, run_id, {"events": competitor_run()})
    rows = stored(own_db, run_id)[3]
    assert rows > 2
    assert prune_ledger(own_db, timedelta(hours=24)) == []  # today's events are within the horizon
    assert stored(own_db, run_id)[3] == rows
    today = datetime.now(UTC).date()
    dropped = prune_ledger(own_db, timedelta(hours=24), now=datetime.now(UTC) + timedelta(days=2))
    assert f"ingested_events_p{today:%Y%m%d}" in dropped
    assert stored(own_db, run_id)[3] == 0
    with own_db.connection() as conn:
        left = [p.name for p in partitions(conn, "ingested_events")]
    assert left and all(name not in left for name in dropped)  # later days stay, ready for writes


def test_a_replay_older_than_the_horizon_changes_nothing(own_db):
    run_id = new_id()
    events = competitor_run(drop_ratio_bad=True)
    ingest.create_run(own_db, {"run_id": run_id, "pipeline": "p", "entity": "e"})
    ingest.ingest_events(own_db, run_id, {"events": events})
    before = stored(own_db, run_id)
    with own_db.connection() as conn:  # received three days ago: in the partition of older days
        conn.execute(
            "UPDATE ingested_events SET received_on = %s WHERE run_id = %s",
            (datetime.now(UTC).date() - timedelta(days=3), run_id),
        )
    assert prune_ledger(own_db, timedelta(0)) == ["ingested_events_before"]
    assert stored(own_db, run_id)[3] == 0
    # The SDK's retry, long after: every event is new to the ledger again, and is applied again.
    replayed = ingest.ingest_events(own_db, run_id, {"events": list(reversed(events))})
    assert replayed.to_dict()["accepted"] == len(events)
    after = stored(own_db, run_id)
    assert after[:3] == before[:3]  # the run, its steps and its artifacts: unchanged


def test_the_upkeep_runs_its_jobs_and_stops_when_asked():
    ran = threading.Event()
    calls = []

    def job():
        calls.append(time.monotonic())
        ran.set()

    def failing():
        raise RuntimeError("PostgreSQL is down")

    background = Background([Job("tick", 0.01, job), Job("broken", 0.01, failing), Job("never", 0, job)]).start()
    assert ran.wait(5) and background.running
    assert background.stop(timeout=5) and not background.running  # a failing job does not stop the others
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled  # nothing runs after stop


def _persistence_of(conn) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'ingested_events'::regclass"
    ).fetchall()
    return [row[0] for row in rows]


def _persistence(conn) -> dict[str, str]:
    rows = conn.execute(
        "SELECT c.relname AS name, c.relpersistence AS p FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'ingested_events'::regclass"
    ).fetchall()
    return {row["name"]: row["p"] for row in rows}


def test_the_ledgers_days_are_unlogged_and_the_other_tables_are_not(own_db):
    with own_db.connection() as conn:
        ledger = _persistence(conn)
        steps = conn.execute(
            "SELECT DISTINCT c.relpersistence AS p FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'steps'::regclass"
        ).fetchall()
    # A fresh database's ledger is empty: every day of it, the upgraded one included, is unlogged.
    assert len(ledger) > 2 and set(ledger.values()) == {"u"}
    assert [row["p"] for row in steps] == ["p"]  # what was decided is durable


def test_the_upgrade_unlogs_only_the_ledgers_empty_days(pg_server_url):
    """Migration 9 on a database at version 8 with events in the ledger: the day holding them stays
    logged (rewriting it would lock out ingest), the empty days ahead become unlogged."""
    with throwaway_database(pg_server_url, "xray_ledger_up") as url:
        if url is None:
            pytest.skip("this PostgreSQL does not let the tests create a database")
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, up_to=8)
            for name in _persistence_of(conn):  # as the release before this one made them
                conn.execute(f'ALTER TABLE "{name}" SET LOGGED')
        database = Database(url, load_settings({}, database_url=url, pool_min_size=1, pool_max_size=2))
        try:
            run_id, events = new_id(), competitor_run()
            ingest.create_run(database, {"run_id": run_id, "pipeline": "p", "entity": "e"})
            ingest.ingest_events(database, run_id, {"events": events})
            with database.connection() as conn:
                before = _persistence(conn)
            assert set(before.values()) == {"p"}
            with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
                assert migrate(conn) == 9
                after = _persistence(conn)
                held = conn.execute(
                    "SELECT DISTINCT tableoid::regclass::text AS name FROM ingested_events WHERE run_id = %s", (run_id,)
                ).fetchall()
            today = f"ingested_events_p{datetime.now(UTC).date():%Y%m%d}"
            assert [row["name"] for row in held] == [today] and after[today] == "p"
            assert {name for name, p in after.items() if p == "u"} == set(after) - {today}
            # And a replay of those events is still recognised as one.
            replayed = ingest.ingest_events(database, run_id, {"events": events}).to_dict()
            assert (replayed["accepted"], replayed["duplicates"]) == (0, len(events))
        finally:
            database.close()

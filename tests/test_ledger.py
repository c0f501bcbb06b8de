"""The ingest ledger prunes itself past its horizon, and a replay older than the horizon changes
nothing: every merge rule is order-free and keyed by its event. And a worker's upkeep has one owner
that stops it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from tests.support.events import competitor_run, new_id
from xray_server import ingest
from xray_server.ingest.ledger import prune_ledger
from xray_server.runtime.background import Background, Job


def stored(db, run_id):
    """Everything stored of a run, as comparable values."""
    with db.connection() as conn:
        run = conn.execute("SELECT * FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        steps = conn.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
        artifacts = conn.execute("SELECT * FROM artifacts WHERE run_id = %s ORDER BY name", (run_id,)).fetchall()
        ledger = conn.execute("SELECT count(*) AS n FROM ingested_events WHERE run_id = %s", (run_id,)).fetchone()["n"]
    return run, steps, artifacts, ledger


def test_old_ledger_rows_are_pruned_and_recent_ones_kept(db, pipeline):
    old, recent = new_id(), new_id()
    for run_id in (old, recent):
        ingest.create_run(db, {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
        ingest.ingest_events(db, run_id, {"events": competitor_run()})
    with db.connection() as conn:
        conn.execute("UPDATE ingested_events SET received_at = now() - interval '3 days' WHERE run_id = %s", (old,))
    old_rows, recent_rows = stored(db, old)[3], stored(db, recent)[3]
    assert old_rows > 2
    # A batch of 2 at a time; other tests' runs in this database may be old enough too.
    assert prune_ledger(db, timedelta(days=1), batch=2) >= old_rows
    assert stored(db, old)[3] == 0 and stored(db, recent)[3] == recent_rows


def test_a_replay_older_than_the_horizon_changes_nothing(db, pipeline):
    run_id = new_id()
    events = competitor_run(drop_ratio_bad=True)
    ingest.create_run(db, {"run_id": run_id, "pipeline": pipeline, "entity": "e"})
    ingest.ingest_events(db, run_id, {"events": events})
    before = stored(db, run_id)
    with db.connection() as conn:
        conn.execute("UPDATE ingested_events SET received_at = now() - interval '2 days' WHERE run_id = %s", (run_id,))
    prune_ledger(db, timedelta(days=1))
    assert stored(db, run_id)[3] == 0
    # The SDK's retry, long after: every event is new to the ledger again, and is applied again.
    replayed = ingest.ingest_events(db, run_id, {"events": list(reversed(events))})
    assert replayed.to_dict()["accepted"] == len(events)
    after = stored(db, run_id)
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

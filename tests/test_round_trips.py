"""A batch costs a handful of statements, not one per event; the usual batch costs one."""

import uuid
from contextlib import contextmanager

from tests.support.events import competitor_run
from xray_sdk.ids import new_run_id
from xray_server import ingest
from xray_server.storage.pool import Database


class CountingDatabase(Database):
    """The real pool; each lent connection counts the statements sent through it."""

    statements = 0

    @contextmanager
    def connection(self):
        with super().connection() as conn:
            original = conn.execute

            def counted(*args, **kwargs):
                CountingDatabase.statements += 1
                return original(*args, **kwargs)

            conn.execute = counted
            try:
                yield conn
            finally:
                del conn.execute


def statements_for(db: CountingDatabase, copies: int, *, ends_only: bool = False) -> int:
    # `copies` runs' worth of events sent as one run: 5 distinct steps and a run_finish each.
    events = [e for _ in range(copies) for e in competitor_run() if not (ends_only and e["type"] == "step_start")]
    CountingDatabase.statements = 0
    # A run id that carries its day (as the SDK's do) is placed without a lookup.
    result = ingest.ingest_events(db, new_run_id(), {"events": events})
    assert result.accepted == len(events)
    return CountingDatabase.statements


def test_a_batch_costs_the_same_statements_whatever_its_size(db, settings):
    counting = CountingDatabase(settings.database_url, settings, open_wait=True)
    try:
        statements_for(counting, 1)  # the process learns once where the partitioned days begin
        small, large = statements_for(counting, 1), statements_for(counting, 80)
    finally:
        counting.close()
    assert small == large
    # one statement for the ledger, the run and the first round of steps; one more round (the ends)
    assert small == 2


def test_a_batch_of_step_ends_and_a_finish_is_one_statement(db, settings):
    """What the SDK sends for steps shorter than a second: each step once, and the run's end."""
    counting = CountingDatabase(settings.database_url, settings, open_wait=True)
    try:
        statements_for(counting, 1, ends_only=True)  # the process learns where the partitioned days begin
        assert statements_for(counting, 1, ends_only=True) == 1
        assert statements_for(counting, 80, ends_only=True) == 1
    finally:
        counting.close()


def test_a_run_id_without_a_day_costs_a_lookup_per_batch_not_per_event(db, settings):
    counting = CountingDatabase(settings.database_url, settings, open_wait=True)
    try:
        counts = []
        for copies in (1, 40):
            events = [e for _ in range(copies) for e in competitor_run() if e["type"] != "step_start"]
            CountingDatabase.statements = 0
            assert ingest.ingest_events(counting, str(uuid.uuid4()), {"events": events}).accepted == len(events)
            counts.append(CountingDatabase.statements)
    finally:
        counting.close()
    assert counts[0] == counts[1] <= 4  # the lock, the look near, everywhere, then the one statement

"""Where a run's rows live: the partition day (`run_day`) of a run, for the write path.

A run id made by an X-Ray SDK (or any UUIDv7) carries its day, so its events are placed without
a lookup. Any other id is anchored where it was first seen: its existing row is looked for in the
partitions around the events' time (one index probe each, pruned when planned), then everywhere;
a new run takes the day of its earliest event. A lock on the id makes two first requests agree."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg

from xray_server.errors import RunOutsidePartitions
from xray_server.storage.partitions import PARTITIONED, carried_day, partitions

# How far from its events' time a foreign-id run is looked for before every partition is.
_NEAR = timedelta(days=1)


def run_day(conn: psycopg.Connection, run_id: str, near: datetime) -> date:
    """The partition day of `run_id`, for events (or a creation) dated `near`. For an id that
    carries no day, call it inside the transaction that writes the run: the lock lasts till then."""
    carried = carried_day(conn, run_id)
    if carried is not None:
        return carried
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (run_id,))
    day = near.astimezone(UTC).date()
    row = conn.execute(
        "SELECT run_day FROM runs WHERE run_id = %s AND run_day BETWEEN %s AND %s",
        (run_id, day - _NEAR, day + _NEAR),
    ).fetchone()
    if row is None:
        row = conn.execute("SELECT run_day FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    return _value(row) if row is not None else day


def is_missing_partition(exc: psycopg.errors.CheckViolation) -> bool:
    """Whether a write failed because no partition holds its run's day (PostgreSQL's own words).
    The ledger's days are the server's own clock, made ahead: missing, they are X-Ray's fault."""
    return any(f'no partition of relation "{table}"' in str(exc) for table in PARTITIONED)


def outside_partitions(conn: psycopg.Connection, run_id: str, day: date) -> RunOutsidePartitions:
    """The error for a write that found no partition for `day`, saying which side it fell off."""
    held = partitions(conn, "runs")
    if held and day >= held[-1].upper:
        return RunOutsidePartitions(
            f"run {run_id} is dated {day}, after the last day X-Ray keeps a partition for ({held[-1].upper}):"
            " is the client's clock ahead? Partitions are made a few days in advance",
            {"run_id": run_id, "run_day": day.isoformat(), "last_day": held[-1].upper.isoformat()},
        )
    first = held[0].lower if held and held[0].lower else None
    return RunOutsidePartitions(
        f"run {run_id} is dated {day}, before the oldest day X-Ray keeps ({first}): the retention"
        " dropped its partition, so its events cannot be stored; send them as a new run",
        {"run_id": run_id, "run_day": day.isoformat(), "first_day": first.isoformat() if first else None},
    )


def _value(row: object) -> date:
    value = row["run_day"] if isinstance(row, dict) else row[0]  # type: ignore[index]
    return value

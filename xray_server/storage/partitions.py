"""The hot tier's time partitions: runs, steps and artifact rows are partitioned by range of
`run_day`, the day of the run they belong to (ARCHITECTURE.md, "Partitions").

A run's rows share its partition, so a day is dropped whole, run and steps together. The
partition `<table>_before` holds every day before the one X-Ray was partitioned on (the rows of
an upgraded database, and runs dated earlier); the others are `size_days` wide and are created
ahead of time, so that no write ever waits for one to be made. Partitions are created as plain
tables and then attached, which takes a lock that lets reads and writes go on. Below them all,
`<table>_kept` holds the judged runs the retention keeps past their day (`KEPT_DAY`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
from psycopg import sql

from xray_sdk.contract.run_ids import day_of_run_id

# Parents and the columns of their primary key, the partition key last.
PARTITIONED = {
    "runs": ("run_id", "run_day"),
    "steps": ("run_id", "step_id", "run_day"),
    "artifacts": ("run_id", "artifact_id", "run_day"),
}
# Children are dropped before parents (steps and artifacts name their run).
DROP_ORDER = ("artifacts", "steps", "runs")
# How many partitions exist beyond today's: a day of slack for clocks ahead of the server's, and
# time for the upkeep job to run again before the last one fills.
AHEAD = 3
_LOCK_KEY = 0x58524159_0004  # "XRAY", partitions
# The day of kept runs: before any day a run id can carry (contract/run_ids.py counts from 1970).
KEPT_DAY = date(1969, 12, 31)
FIRST_DAY = KEPT_DAY + timedelta(days=1)
_BOUND = re.compile(r"FROM \((?:'([0-9-]+)'|MINVALUE)\) TO \('([0-9-]+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition: the days in [lower, upper); `lower` is None for the kept runs' one."""

    table: str
    name: str
    lower: date | None
    upper: date


def partitions(conn: psycopg.Connection, table: str) -> list[Partition]:
    """The partitions of `table` by day, oldest first (the kept runs' one is not among them)."""
    rows = conn.execute(
        "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s)",
        (table,),
    ).fetchall()
    found = []
    for row in rows:
        name, bound = _fields(row, "name", "bound")
        match = _BOUND.search(bound)
        if match is None:
            raise RuntimeError(f"partition {name} of {table} has a bound X-Ray did not make: {bound}")
        lower = date.fromisoformat(match.group(1)) if match.group(1) else None
        found.append(Partition(table, name, lower, date.fromisoformat(match.group(2))))
    return sorted((p for p in found if p.lower is not None), key=lambda p: p.upper)


_partitioned_since: dict[tuple[str, str, str], date] = {}


def partitioned_since(conn: psycopg.Connection) -> date:
    """The first day after the one X-Ray was partitioned on: a run dated earlier may be in the
    partition of the upgraded rows, which carry the upgrade's day whatever their ids say. It never
    changes once made, so each process asks once per database."""
    key = (conn.info.host, str(conn.info.port), conn.info.dbname)
    if key not in _partitioned_since:
        held = partitions(conn, "runs")
        before = [p for p in held if p.name == "runs_before"]
        _partitioned_since[key] = (before or held)[0].upper if held else FIRST_DAY
    return _partitioned_since[key]


def carried_day(conn: psycopg.Connection, run_id: str) -> date | None:
    """The day `run_id` carries, when it alone places the run: not for a day before the upgrade to
    partitions, whose runs sit in the upgraded rows' partition whatever their ids say."""
    carried = day_of_run_id(run_id)
    return carried if carried is not None and carried >= partitioned_since(conn) else None


def ensure_ahead(conn: psycopg.Connection, today: date, size_days: int, ahead: int = AHEAD) -> list[str]:
    """Create the partitions each table lacks up to `ahead` partitions past `today`; their names.
    One caller at a time (an advisory lock); the others find the work done."""
    created: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for table in PARTITIONED:
            existing = partitions(conn, table)
            if not existing:
                raise RuntimeError(f"{table} is not partitioned: apply the schema first (xray migrate)")
            upper = existing[-1].upper
            while upper <= today + timedelta(days=size_days * ahead):
                created.append(_create(conn, table, upper, upper + timedelta(days=size_days)))
                upper += timedelta(days=size_days)
    return created


def _create(conn: psycopg.Connection, table: str, lower: date, upper: date) -> str:
    name = f"{table}_p{lower:%Y%m%d}"
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE)").format(
            sql.Identifier(name), sql.Identifier(table)
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table), sql.Identifier(name), sql.Literal(lower), sql.Literal(upper)
        )
    )
    return name


def partition_tables(conn: psycopg.Connection, today: date) -> None:
    """Turn the unpartitioned tables of schema version 6 into partitioned ones, in place.

    Each table becomes a partition of a new parent (`<table>_before`, every day from 1970 to
    today included), its rows untouched: the new `run_day` column reads a constant for them without a
    rewrite, and its indexes are attached as they are. Only the primary key, which must now hold
    the partition key, is built anew. A database with no run yet partitions today too (its runs
    are placed by their ids from the first day). Runs in the caller's transaction."""
    empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM runs) AS empty").fetchone()
    first_day = today if _fields(empty, "empty")[0] else today + timedelta(days=1)
    for table, key in PARTITIONED.items():
        before = f"{table}_before"
        indexes = _secondary_indexes(conn, table)
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(table), sql.Identifier(before)))
        for name in [*indexes, f"{table}_pkey"]:
            conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(f"{name}_before"))
            )
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN run_day date NOT NULL DEFAULT {}").format(
                sql.Identifier(before), sql.Literal(today)
            )
        )
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN run_day DROP DEFAULT").format(sql.Identifier(before)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY RANGE (run_day)"
            ).format(sql.Identifier(table), sql.Identifier(before))
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, key))
            )
        )
        for name, definition in indexes.items():
            conn.execute(
                sql.SQL(f"CREATE INDEX {{}} ON {{}} {definition}").format(sql.Identifier(name), sql.Identifier(table))
            )  # type: ignore[arg-type]
        # A partition has the parent's key (with run_day) or none: the old one goes, and the
        # attach builds the new one (the only index built; the table stays locked meanwhile).
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(before), sql.Identifier(f"{table}_pkey_before")
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(table),
                sql.Identifier(before),
                sql.Literal(FIRST_DAY),
                sql.Literal(first_day),
            )
        )
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO ({})").format(
                sql.Identifier(f"{table}_kept"), sql.Identifier(table), sql.Literal(FIRST_DAY)
            )
        )


_INDEX_DEF = re.compile(r"^CREATE INDEX \S+ ON \S+ (USING .*)$")


def _secondary_indexes(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """The table's indexes other than its primary key: name -> `USING ...` part of the definition."""
    rows = conn.execute(
        "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary",
        (table,),
    ).fetchall()
    found = {}
    for row in rows:
        name, definition = _fields(row, "name", "definition")
        match = _INDEX_DEF.match(definition)
        if match is None:
            raise RuntimeError(f"index {name} on {table} is not one X-Ray made: {definition}")
        found[name] = match.group(1)
    return found


def _fields(row: object, *names: str) -> tuple:
    if isinstance(row, dict):
        return tuple(row[n] for n in names)
    return tuple(row)  # type: ignore[arg-type]

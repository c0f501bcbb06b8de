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
# The ingest ledger: partitioned by the day an event was received, and dropped past its horizon.
LEDGER = "ingested_events"
LEDGER_KEY = ("run_id", "event_id", "received_on")
# Every table with partitions made ahead.
DAILY = (*PARTITIONED, LEDGER)
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
        name, bound = row_fields(row, "name", "bound")
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
        for table in DAILY:
            existing = partitions(conn, table)
            if not existing:
                raise RuntimeError(f"{table} is not partitioned: apply the schema first (xray migrate)")
            # The ledger keeps a day or two, whatever the size of the others.
            size = timedelta(days=1 if table == LEDGER else size_days)
            upper = existing[-1].upper
            while upper <= today + size * ahead:
                created.append(_create(conn, table, upper, upper + size))
                upper += size
    return created


def _create(conn: psycopg.Connection, table: str, lower: date, upper: date) -> str:
    name = f"{table}_p{lower:%Y%m%d}"
    conn.execute(
        sql.SQL("CREATE {} TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE)").format(
            sql.SQL("UNLOGGED" if table == LEDGER else ""), sql.Identifier(name), sql.Identifier(table)
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table), sql.Identifier(name), sql.Literal(lower), sql.Literal(upper)
        )
    )
    return name


def partition_tables(conn: psycopg.Connection, today: date) -> None:
    """Turn the unpartitioned runs, steps and artifacts of schema version 6 into partitioned
    ones by `run_day`, in place (`_partition_in_place`), each with its partition of kept runs."""
    first_day = _first_day(conn, "runs", today)
    for table, key in PARTITIONED.items():
        _partition_in_place(conn, table, key, "run_day", today, first_day)
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO ({})").format(
                sql.Identifier(f"{table}_kept"), sql.Identifier(table), sql.Literal(FIRST_DAY)
            )
        )


def partition_ledger(conn: psycopg.Connection, today: date) -> None:
    """Partition the ingest ledger by the day an event was received (`received_on`), in place, so
    that it is pruned by dropping days: the ledger only needs to outlive an SDK's retries."""
    conn.execute("DROP INDEX IF EXISTS ingested_events_received_idx")  # the BRIN of the old pruning
    _partition_in_place(conn, LEDGER, LEDGER_KEY, "received_on", today, _first_day(conn, LEDGER, today))
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN received_on SET DEFAULT (now() AT TIME ZONE 'UTC')::date").format(
            sql.Identifier(LEDGER)
        )
    )


def unlog_ledger(conn: psycopg.Connection) -> list[str]:
    """Make the ledger's empty partitions UNLOGGED (those made from now on are born so); their
    names. The ledger only answers "was this event applied?" for an SDK's retries, and a lost
    answer costs nothing: a replay is applied again and changes nothing (every merge rule is
    order-free and keyed by its event). So its rows need no WAL: PostgreSQL empties an UNLOGGED
    table after a crash, and the ledger's row per event costs about a quarter less CPU (BENCHMARKS.md,
    the server's ingest path). Partitions holding rows keep them logged until they are dropped, a
    day or two later: rewriting one would lock out ingest while it runs."""
    unlogged = []
    for p in partitions(conn, LEDGER):
        name = sql.Identifier(p.name)
        if row_fields(
            conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {}) AS empty").format(name)).fetchone(), "empty"
        )[0]:
            conn.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(name))
            unlogged.append(p.name)
    return unlogged


def _first_day(conn: psycopg.Connection, table: str, today: date) -> date:
    """The first day of the partitions made ahead: today when `table` holds nothing yet (its rows
    are placed by their day from the first one), else tomorrow (today's go with the old rows)."""
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {}) AS empty").format(sql.Identifier(table)))
    return today if row_fields(empty.fetchone(), "empty")[0] else today + timedelta(days=1)


def _partition_in_place(
    conn: psycopg.Connection, table: str, key: tuple[str, ...], column: str, today: date, first_day: date
) -> None:
    """Make `table` a partition (`<table>_before`, every day from 1970 to `first_day`) of a new
    parent partitioned by `column`, its rows untouched: the new column reads a constant (`today`)
    for them without a rewrite, and its indexes are attached as they are. Only the primary key,
    which must now hold the partition key, is built anew. Runs in the caller's transaction."""
    before = f"{table}_before"
    indexes = _secondary_indexes(conn, table)
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(table), sql.Identifier(before)))
    for name in [*indexes, f"{table}_pkey"]:
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(f"{name}_before"))
        )
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN {} date NOT NULL DEFAULT {}").format(
            sql.Identifier(before), sql.Identifier(column), sql.Literal(today)
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(before), sql.Identifier(column))
    )
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY RANGE ({})").format(
            sql.Identifier(table), sql.Identifier(before), sql.Identifier(column)
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, key))
        )
    )
    for name, definition in indexes.items():
        # Ascending: rows arrive in time order, and a B-tree fills its pages when new keys go to its
        # right end (a descending time index splits its leftmost page and stays half empty). Read
        # newest first, it is walked backwards, as fast. PostgreSQL attaches the old descending
        # index of the upgraded rows to it as it is (both orders serve both directions).
        ascending = definition.replace(" DESC", "")
        conn.execute(
            sql.SQL(f"CREATE INDEX {{}} ON {{}} {_only_set(ascending)}").format(
                sql.Identifier(name), sql.Identifier(table)
            )
        )  # type: ignore[arg-type]
    # A partition has the parent's key (with the partition column) or none: the old one goes, and
    # the attach builds the new one (the only index built; the table stays locked meanwhile).
    conn.execute(
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(before), sql.Identifier(f"{table}_pkey_before")
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table), sql.Identifier(before), sql.Literal(FIRST_DAY), sql.Literal(first_day)
        )
    )
    # An old index the parent's does not match (a GIN index now partial: the attach built the
    # partial one, over the rows that have a value) would only cost writes and space: it goes.
    unattached = conn.execute(
        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = to_regclass(%s) AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
        (before,),
    ).fetchall()
    for row in unattached:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(row_fields(row, "relname")[0])))


def extend_back(conn: psycopg.Connection, since: date) -> list[str]:
    """Make the partitions of the days from `since` on, for a database whose partition of earlier
    days (`<table>_before`) holds nothing yet: data loaded with past times (an import, a
    benchmark) then sits in the partitions of its days. Their names."""
    created: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for table in DAILY:
            before = next(p for p in partitions(conn, table) if p.name == f"{table}_before")
            if since >= before.upper:
                continue
            held = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {}) AS held").format(sql.Identifier(before.name)))
            if row_fields(held.fetchone(), "held")[0]:
                raise RuntimeError(f"{before.name} holds rows: its days cannot be split into partitions")
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(table), sql.Identifier(before.name))
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(table), sql.Identifier(before.name), sql.Literal(FIRST_DAY), sql.Literal(since)
                )
            )
            day = since
            while day < before.upper:
                created.append(_create(conn, table, day, day + timedelta(days=1)))
                day += timedelta(days=1)
    _partitioned_since.clear()
    return created


# The JSON columns searched by containment or key (`rejections ? r`, `outcome @> {...}`), often
# NULL: a step without rejections, a run without an outcome. Their GIN indexes hold only the rows
# that have a value, which every such test implies (the operators are strict), so the planner still
# uses them; a NULL costs nothing to store.
_SPARSE_GIN = re.compile(r"^USING gin \((rejections|outcome|metadata)\b[^)]*\)$")


def _only_set(definition: str) -> str:
    """`definition`, made partial to the rows with a value when it indexes a sparse JSON column."""
    match = _SPARSE_GIN.match(definition)
    return f"{definition} WHERE ({match.group(1)} IS NOT NULL)" if match else definition


def drop_partition(conn: psycopg.Connection, table: str, name: str) -> None:
    """Detach and drop one partition. CONCURRENTLY (PostgreSQL 14+) lets ingest and reads go on; it
    cannot run in a transaction, so the caller's connection must be in autocommit (the pool's are).
    A partition already detached (by another worker, or a pass interrupted) is just dropped."""
    if any(p.name == name for p in partitions(conn, table)):
        concurrently = sql.SQL(" CONCURRENTLY" if conn.info.server_version >= 140000 else "")
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(table), sql.Identifier(name))
            + concurrently
        )
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


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
        name, definition = row_fields(row, "name", "definition")
        match = _INDEX_DEF.match(definition)
        if match is None:
            raise RuntimeError(f"index {name} on {table} is not one X-Ray made: {definition}")
        found[name] = match.group(1)
    return found


def row_fields(row: object, *names: str) -> tuple:
    """`names` of `row`, whichever row factory the caller's connection has (dict or tuple)."""
    if isinstance(row, dict):
        return tuple(row[n] for n in names)
    return tuple(row)  # type: ignore[arg-type]

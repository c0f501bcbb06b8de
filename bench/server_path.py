"""The server's ingest path, stage by stage: what each optimisation bought, before against after.

One process, no HTTP: a batch of 100 plain `step_end` events (three metrics and a `why`, as
the SDK sends them) goes through each stage of `POST /runs/<id>/events`, and each stage's
earlier way ("before") is timed beside its current way ("after") in interleaved rounds on
the same input. CPU stages are microseconds per event; the SQL stage is the wall time of a
batch on one connection to the embedded PostgreSQL, PostgreSQL's own work included.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import psutil
import psycopg
from marshmallow import Schema, fields, validate
from psycopg.types.json import Jsonb, set_json_dumps

from xray_sdk.contract.run_ids import day_of_run_id
from xray_sdk.ids import new_run_id
from xray_server import jsonio
from xray_server.ingest import batch as ingest
from xray_server.ingest.merge import STEP_COLUMNS, UPSERT_STEPS
from xray_server.ingest.rows import prepare
from xray_server.runtime.config import load_settings
from xray_server.schemas.events import EVENT_SCHEMAS, BatchSchema, load_event
from xray_server.storage.migrations import migrate
from xray_server.storage.pool import connection_kwargs

from .database import bench_database, step_copy_values
from .events import filter_step_ends

BATCH = 100


class _BatchSchemaBefore(Schema):
    """The envelope as it was: marshmallow walked every item of the list."""

    events = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1, max=1000))


# The batch as it was applied before: five statements in a transaction.
_ENSURE_RUN = """
INSERT INTO runs AS r (run_id, run_day, implicit, started_at) VALUES (%s, %s, true, %s)
ON CONFLICT (run_id, run_day) DO UPDATE SET started_at = LEAST(r.started_at, EXCLUDED.started_at)
WHERE r.implicit AND EXCLUDED.started_at < r.started_at
"""
_LEDGER = """
INSERT INTO ingested_events (run_id, event_id) SELECT %s, e FROM unnest(%s::uuid[]) AS e ORDER BY e
ON CONFLICT DO NOTHING RETURNING event_id
"""


def _apply_before(conn: psycopg.Connection, run_id: str, prepared: list) -> None:
    with conn.transaction():
        conn.execute(_ENSURE_RUN, (run_id, day_of_run_id(run_id), min(p.ts for p in prepared)))
        new = {str(r["event_id"]) for r in conn.execute(_LEDGER, (run_id, sorted(p.event_id for p in prepared)))}
        conn.execute(
            UPSERT_STEPS,
            {
                "run_id": run_id,
                "run_day": day_of_run_id(run_id),
                "rows": Jsonb([p.step_row for p in prepared if p.step_row and p.event_id in new]),
            },
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batches", type=int, default=40, help="batches per variant per round")
    parser.add_argument("--rounds", type=int, default=7)


def _per_event_us(fn: Callable[[Any], Any], inputs: list[Any], per_input: int) -> float:
    started = time.perf_counter()
    for item in inputs:
        fn(item)
    return (time.perf_counter() - started) / (len(inputs) * per_input) * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    batches = [filter_step_ends(BATCH) for _ in range(args.batches)]
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    events = [e for b in batches for e in b]
    loaded = [load_event(e) for e in events]
    rows = [[prepare("r", i, e).step_row for i, e in enumerate(load_event(x) for x in b)] for b in batches]
    before_envelope, after_envelope = _BatchSchemaBefore(), BatchSchema()
    cpu_stages: dict[str, tuple[Callable, Callable, list, int]] = {
        "decode the body (json → orjson)": (json.loads, jsonio.loads_fast, bodies, BATCH),
        "check the envelope (List of Raw → the array as it is)": (
            lambda b: before_envelope.load({"events": b}),
            lambda b: after_envelope.load({"events": b}),
            batches,
            BATCH,
        ),
        "validate an event (marshmallow → plain loader)": (
            lambda e: EVENT_SCHEMAS[e["type"]].load(e),
            load_event,
            events,
            1,
        ),
        "prepare the row (bound, contract)": (lambda e: prepare("r", 0, e), lambda e: prepare("r", 0, e), loaded, 1),
        "encode the rows as jsonb (json → orjson)": (lambda r: json.dumps(r).encode(), jsonio.dumps, rows, BATCH),
    }
    timings: dict[str, dict[str, list[float]]] = {name: {"before": [], "after": []} for name in cpu_stages}
    for round_ in range(args.rounds):
        for name, (before, after, inputs, per_input) in cpu_stages.items():
            # Alternate which goes first, so that neither always meets a warmer (or busier) machine.
            for which in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                fn = before if which == "before" else after
                timings[name][which].append(_per_event_us(fn, inputs, per_input))
    result: dict[str, Any] = {"batch_events": BATCH, "rounds": args.rounds, "cpu": {}}
    for name, t in timings.items():
        b, a = statistics.median(t["before"]), statistics.median(t["after"])
        result["cpu"][name] = {"before_us": round(b, 2), "after_us": round(a, 2), "ratio": round(a / b, 3)}
    with bench_database() as (url, where):
        result["database"] = where
        result["sql"] = _sql_stage(url, args)
        result["postgres_cpu"] = _postgres_share(url, args)
    return result


def _copy_steps(conn: psycopg.Connection, run_id: str, prepared: list) -> None:
    """The batch's step rows by COPY into `steps`: the database's own floor for them."""
    columns = ["run_id", "run_day", *(c for c, _ in STEP_COLUMNS)]
    day = day_of_run_id(run_id)
    with conn.cursor().copy(f"COPY steps ({', '.join(columns)}) FROM STDIN") as copy:
        for p in prepared:
            copy.write_row([run_id, day, *step_copy_values(p.step_row)])


# A session's staging table for step rows (a temporary table: never WAL-logged, emptied at commit).
_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS stage_steps ("
    + ", ".join(f"{c} {t}" for c, t in STEP_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
# The steps' merge, its rows read from the staging table instead of from JSON.
_MERGE_FROM_STAGE, _replaced = re.subn(
    r"FROM jsonb_to_recordset\(%\(rows\)s\) AS f\([^)]*\)", "FROM stage_steps AS f", UPSERT_STEPS
)
assert _replaced == 1, "the steps' merge no longer reads its rows from jsonb_to_recordset"


def _ledger_into(conn: psycopg.Connection, table: str, run_id: str, prepared: list) -> None:
    conn.execute(
        f"INSERT INTO {table} (run_id, event_id) SELECT %s, e FROM unnest(%s::uuid[]) e ON CONFLICT DO NOTHING",
        (run_id, [x.event_id for x in prepared]),
    )


def _staged_merge(conn: psycopg.Connection, run_id: str, prepared: list) -> None:
    """The batch's step rows by COPY into the staging table, then merged into `steps` from it."""
    with conn.transaction():
        with conn.cursor().copy(f"COPY stage_steps ({', '.join(c for c, _ in STEP_COLUMNS)}) FROM STDIN") as copy:
            for p in prepared:
                copy.write_row(step_copy_values(p.step_row))
        conn.execute(_MERGE_FROM_STAGE, {"run_id": run_id, "run_day": day_of_run_id(run_id)})


def _postgres_share(url: str, args: argparse.Namespace) -> dict[str, float]:
    """PostgreSQL's CPU (its backend's own times) per step for the apply statement and for its
    parts alone, beside COPY of the same rows: where the database's share of a step goes."""
    variants: dict[str, Callable[[psycopg.Connection, str, list], Any]] = {
        "the apply statement (ledger, run, steps merged)": lambda c, r, p: ingest._apply(c, r, p),
        "the steps' merge alone": lambda c, r, p: c.execute(
            UPSERT_STEPS, {"run_id": r, "run_day": day_of_run_id(r), "rows": Jsonb([x.step_row for x in p])}
        ),
        "the ledger alone (UNLOGGED, as X-Ray keeps it)": lambda c, r, p: c.execute(
            "INSERT INTO ingested_events (run_id, event_id) SELECT %s, e FROM unnest(%s::uuid[]) e ON CONFLICT DO NOTHING",
            (r, [x.event_id for x in p]),
        ),
        "COPY of the same step rows": _copy_steps,
        # The two ways the issue names to bring the database's share near COPY's, measured:
        "the steps' merge from a staging table filled by COPY": _staged_merge,
        # WAL's share alone: the same rows into two tables that differ only in being logged.
        "a ledger table of one partition, logged": lambda c, r, p: _ledger_into(c, "bench_logged_ledger", r, p),
        "the same table, UNLOGGED": lambda c, r, p: _ledger_into(c, "bench_unlogged_ledger", r, p),
    }
    kwargs = connection_kwargs(load_settings({}, database_url=url, prepared_statements=True))
    spent: dict[str, list[float]] = {name: [] for name in variants}
    connections = {name: psycopg.connect(url, **kwargs) for name in variants}
    try:
        for conn in connections.values():
            set_json_dumps(jsonio.dumps, conn)
        with psycopg.connect(url, autocommit=True) as conn:
            for persistence, name in (("", "bench_logged_ledger"), ("UNLOGGED", "bench_unlogged_ledger")):
                conn.execute(
                    f"CREATE {persistence} TABLE IF NOT EXISTS {name}"
                    " (LIKE ingested_events INCLUDING DEFAULTS INCLUDING INDEXES)"
                )
        connections["the steps' merge from a staging table filled by COPY"].execute(_STAGE)
        for round_ in range(args.rounds + 1):
            for name, apply in variants.items():
                conn = connections[name]
                backend = psutil.Process(conn.info.backend_pid)
                work = []
                for _ in range(args.batches):
                    run_id = new_run_id()
                    work.append(
                        (run_id, [prepare(run_id, i, load_event(e)) for i, e in enumerate(filter_step_ends(BATCH))])
                    )
                before = sum(backend.cpu_times()[:2])
                for run_id, prepared in work:
                    apply(conn, run_id, prepared)
                if round_:  # the first round warms caches and prepares statements
                    spent[name].append(sum(backend.cpu_times()[:2]) - before)
    finally:
        for conn in connections.values():
            conn.close()
    # Summed over the rounds: the kernel counts a process's CPU in ticks (10 ms), too coarse for one.
    steps = args.rounds * args.batches * BATCH
    return {name: round(sum(t) / steps * 1e6, 1) for name, t in spent.items()}


def _sql_stage(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Wall ms per batch applied: five statements in a transaction, against one statement
    without BEGIN/COMMIT, without and with a server-side prepared statement."""
    variants = {
        "five statements in a transaction (before)": (False, lambda c, r, p: _apply_before(c, r, p)),
        "one statement, autocommit": (False, lambda c, r, p: ingest._apply(c, r, p)),
        "one statement, autocommit, prepared": (True, lambda c, r, p: ingest._apply(c, r, p)),
    }
    connections = {}
    for name, (prepared_statements, _) in variants.items():
        kwargs = connection_kwargs(load_settings({}, database_url=url, prepared_statements=prepared_statements))
        connections[name] = psycopg.connect(url, **kwargs)
        set_json_dumps(jsonio.dumps, connections[name])
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    timings: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(args.rounds + 1):
            # Rotate the order: each variant meets the growing table in every position.
            order = list(variants.items())
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name, (_, apply) in order:
                work = []
                for _ in range(args.batches):
                    run_id = new_run_id()  # it carries its day, as the SDK's do
                    events = enumerate(filter_step_ends(BATCH))
                    work.append((run_id, [prepare(run_id, i, load_event(e)) for i, e in events]))
                started = time.perf_counter()
                for run_id, prepared in work:
                    apply(connections[name], run_id, prepared)
                if round_:  # the first round warms caches and prepares statements
                    timings[name].append((time.perf_counter() - started) / args.batches * 1000)
    finally:
        for conn in connections.values():
            conn.close()
    base = statistics.median(timings[next(iter(variants))])
    return {
        name: {"ms_per_batch": round(statistics.median(t), 3), "ratio": round(statistics.median(t) / base, 3)}
        for name, t in timings.items()
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"CPU per event, batches of {result['batch_events']} plain `step_end` events, median of "
        f"{result['rounds']} interleaved rounds:",
        "",
        "| stage | before (µs) | after (µs) | after / before |",
        "|---|---|---|---|",
    ]
    for name, t in result["cpu"].items():
        lines.append(f"| {name} | {t['before_us']} | {t['after_us']} | {t['ratio']} |")
    total_b = sum(t["before_us"] for t in result["cpu"].values())
    total_a = sum(t["after_us"] for t in result["cpu"].values())
    lines += [
        f"| all the stages above | {round(total_b, 1)} | {round(total_a, 1)} | {round(total_a / total_b, 3)} |",
        "",
        f"Applying a batch of {result['batch_events']} events in {result['database']}, wall time on one "
        "connection (PostgreSQL's work included):",
        "",
        "| how | ms per batch | ratio to before |",
        "|---|---|---|",
    ]
    for name, t in result["sql"].items():
        lines.append(f"| {name} | {t['ms_per_batch']} | {t['ratio']} |")
    if "postgres_cpu" in result:
        lines += [
            "",
            "PostgreSQL's CPU per step (its backend's own times, summed over the rounds), for the apply statement, "
            "for its parts alone, and for COPY of the same rows:",
            "",
            "| what PostgreSQL does | µs of CPU a step |",
            "|---|---|",
        ]
        lines += [f"| {name} | {us} |" for name, us in result["postgres_cpu"].items()]
    return "\n".join(lines)


TITLE = "The server's ingest path, stage by stage: what each optimisation bought"


def reading(result: dict[str, Any]) -> str:
    cpu, sql = result["cpu"], result["sql"]
    before = sum(t["before_us"] for t in cpu.values())
    after = sum(t["after_us"] for t in cpu.values())
    validate = cpu["validate an event (marshmallow → plain loader)"]
    names = list(sql)
    return "\n".join(
        [
            f"- **Validation** was the largest cost: marshmallow took {validate['before_us']} µs an event. The plain "
            f"loader (`xray_server/schemas/plain.py`) applies the same fields, validators and defaults, built from "
            f"the same schemas, in {validate['after_us']} µs: each schema becomes a msgspec Struct, whose keys, "
            "types, lengths, ranges and choices are checked in compiled code, and Python checks only what msgspec "
            "cannot state (a time's zone and window, storable text, a JSON value's depth). Anything it is not sure "
            "of goes to marshmallow, which then gives the result or the field errors. A property test "
            "(`tests/test_plain_loader.py`) checks that what it accepts, marshmallow accepts with an identical "
            "result. Before msgspec (2026-11-25, same command), the hand-written loader took 29.67 µs against "
            "marshmallow's 155.45 (x0.191).",
            f"- **All the CPU stages** together: {round(before, 1)} → {round(after, 1)} µs an event "
            f"(x{round(after / before, 2)}). orjson reads and writes JSON only where it gives exactly what `json` "
            "would (an integer of 19 digits or more, a lone surrogate or invalid JSON goes to `json`, tested in "
            "`tests/test_jsonio.py`); the envelope no longer walks every event.",
            f"- **Applying a batch**: one statement (ledger, run and steps through data-modifying CTEs) in "
            f"autocommit instead of five in a transaction: x{sql[names[1]]['ratio']}; with a server-side prepared "
            f"statement as well (PostgreSQL plans the merge once per connection): x{sql[names[2]]['ratio']}. "
            "Prepared statements are on when the server starts its own PostgreSQL and for "
            "`XRAY_DB_PREPARED_STATEMENTS=on`; they stay off by default for a URL, because transaction poolers "
            "(pgbouncer, Supabase) break them.",
            "- Not measured here but in the other benchmarks: responses encoded by orjson, uuid columns read as "
            "text, and no pool check for a connection used within the last second (a round trip saved per request).",
            *_postgres_reading(result.get("postgres_cpu")),
        ]
    )


def _postgres_reading(pg: dict[str, float] | None) -> list[str]:
    if not pg:
        return []
    apply, merge, ledger, copy = (pg[k] for k in list(pg)[:4])
    lines = [
        f"- **PostgreSQL's share of a step**: the apply statement costs its backend {apply} µs a step, "
        f"x{round(apply / copy, 1)} of COPY's {copy} for the same rows. Alone, the steps' merge "
        f"(`jsonb_to_recordset`, then `INSERT ... ON CONFLICT` with the merge rules) is {merge} "
        f"(x{round(merge / copy, 1)} of COPY) and the ledger's row per event {ledger}: the ledger is the "
        "first thing between X-Ray and twice COPY, then the JSON the rows travel in."
    ]
    staged = pg.get("the steps' merge from a staging table filled by COPY")
    logged, unlogged = pg.get("a ledger table of one partition, logged"), pg.get("the same table, UNLOGGED")
    if staged is not None and logged is not None and unlogged is not None:
        lines.append(
            f"- **The two remedies, measured**: without WAL, a ledger row costs {unlogged} µs a step against "
            f"{logged} logged (x{round(unlogged / logged, 2)}): the ledger is UNLOGGED since schema version 9. The same "
            f"merge fed from a temporary staging table filled by COPY costs {staged} against {merge} from JSON "
            f"(x{round(staged / merge, 2)}): not taken, since it adds a round trip and a statement per request, "
            "and its rows would be built in the server's Python, which already costs more than PostgreSQL."
        )
    return lines

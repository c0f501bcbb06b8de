"""Candidate-level evidence: what recording decisions costs a step, what reason counts cost the
hot tier, and whether a cross-run reason query is index-served.

1. Recording: 10,000 candidates through `step.keep` / `step.reject` (90% rejected, three
   reasons), against the same loop doing nothing, in interleaved rounds; then `step.decide`.
2. Bytes: N filter steps loaded with SQL, with and without a two-reason `rejections` column
   (and its GIN index); the difference per step.
3. The query "filter steps where category_not_compatible removed at least half the candidates,
   last 24 h": EXPLAIN through `xray_server.query`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .database import bench_database, table_bytes_sql

ROUNDS = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200_000, help="filter steps loaded for the bytes and EXPLAIN")


def recording(candidates: int) -> dict[str, Any]:
    import xray_sdk

    client = xray_sdk.Client("http://127.0.0.1:9", capture="sample")
    run = client.start_run("bench", "B0")
    items = [{"asin": f"B{i:08d}", "category": "phone_case"} for i in range(candidates)]
    reasons = ("category_not_compatible", "price_out_of_band", "out_of_stock")

    def bare() -> None:
        for i, c in enumerate(items):
            if i % 10:
                reasons[i % 3]
            else:
                c  # noqa: B018 - the loop's own cost, the baseline the other variants are held to

    def per_candidate() -> None:
        step = run.step("compat_filter", "filter")
        for i, c in enumerate(items):
            if i % 10:
                step.reject(c, reasons[i % 3])
            else:
                step.keep(c)

    def bulk() -> None:
        step = run.step("compat_filter", "filter")
        step.decide(
            (c for i, c in enumerate(items) if not i % 10), ((c, reasons[i % 3]) for i, c in enumerate(items) if i % 10)
        )

    times: dict[str, list[float]] = {"bare_loop": [], "keep_reject": [], "decide": []}
    for _ in range(ROUNDS):
        for name, fn in (("bare_loop", bare), ("keep_reject", per_candidate), ("decide", bulk)):
            started = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - started) / candidates * 1e6)
    client.close(0.1)
    out = {name: round(statistics.median(v), 3) for name, v in times.items()}
    out["keep_reject_minus_bare"] = round(out["keep_reject"] - out["bare_loop"], 3)
    return out


_LOAD_RUNS = """
INSERT INTO runs (run_id, run_day, pipeline, entity, status, started_at)
SELECT md5('r' || g)::uuid, (t AT TIME ZONE 'UTC')::date, 'bench', 'B' || g, 'ok', t
FROM (SELECT g, now() - random() * interval '30 days' AS t FROM generate_series(1, %(steps)s) g) x
"""
_LOAD_STEPS = """
INSERT INTO steps (run_id, run_day, step_id, seq, name, step_type, status, started_at, ended_at, candidates_in,
                   candidates_out, drop_ratio, why, end_event_id, rejections)
SELECT r.run_id, r.run_day, md5('s' || r.run_id::text)::uuid, 2, 'compat_filter', 'filter', 'ok', r.started_at,
       r.started_at, 1000, k, 1 - k / 1000.0, 'kept same-category candidates', md5('e' || r.run_id::text)::uuid,
       CASE WHEN %(with_reasons)s THEN jsonb_build_object(
           CASE WHEN random() < 0.05 THEN 'category_not_compatible' ELSE 'price_out_of_band' END, 1000 - k - 10,
           'out_of_stock', 10) END
FROM (SELECT run_id, run_day, started_at, 50 + (random() * 800)::int AS k FROM runs) r
"""


def bytes_and_plan(url: str, steps: int) -> dict[str, Any]:
    from xray_server.query.steps import StepQuery, step_query_sql
    from xray_server.runtime.config import load_settings
    from xray_server.storage.migrations import migrate
    from xray_server.storage.pool import Database

    sizes = {}
    for with_reasons in (False, True):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS runs, steps, artifacts, ingested_events, xray_schema_version CASCADE")
            migrate(conn)
            conn.execute(_LOAD_RUNS, {"steps": steps})
            conn.execute(_LOAD_STEPS, {"with_reasons": with_reasons})
            conn.execute("VACUUM ANALYZE steps")
            sizes[with_reasons] = conn.execute(f"SELECT {table_bytes_sql('steps')}").fetchone()[0] / steps
    q = StepQuery(
        step_type=["filter"],
        reason="category_not_compatible",
        min_reason_share=0.5,
        since=datetime.now(UTC) - timedelta(hours=24),
    )
    statement, params = step_query_sql(q)
    db = Database(url, load_settings({}, database_url=url, pool_min_size=1, pool_max_size=1), open_wait=True)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        plan = "\n".join(
            next(iter(r.values()))
            for r in conn.execute(psycopg.sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + statement, params).fetchall()
        )
    db.close()
    return {
        "steps": steps,
        "bytes_per_step_without": round(sizes[False]),
        "bytes_per_step_with": round(sizes[True]),
        "bytes_per_step_gained": round(sizes[True] - sizes[False]),
        "plan": plan,
        "index_served": "Seq Scan on steps" not in plan,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = {"recording": recording(args.candidates)}
    with bench_database() as (url, where):
        result["database"] = where
        result["hot_tier"] = bytes_and_plan(url, args.steps)
    result["candidates"] = args.candidates
    return result


def report(result: dict[str, Any]) -> str:
    r, h = result["recording"], result["hot_tier"]
    return "\n".join(
        [
            f"Recording {result['candidates']:,} candidates (90% rejected over three reasons), median of {ROUNDS} "
            "interleaved rounds, microseconds per candidate:",
            "",
            "| bare loop | keep / reject | decide (bulk) | keep / reject minus the bare loop |",
            "|---|---|---|---|",
            f"| {r['bare_loop']} | {r['keep_reject']} | {r['decide']} | {r['keep_reject_minus_bare']} |",
            "",
            f"Hot tier, {h['steps']:,} filter steps ({result['database']}): {h['bytes_per_step_without']} bytes per step "
            f"without reason counts, {h['bytes_per_step_with']} with them (two or three reasons, GIN index included): "
            f"{h['bytes_per_step_gained']} bytes gained per filter step.",
            "",
            "EXPLAIN (ANALYZE) of filter steps where `category_not_compatible` removed at least half, last 24 h:",
            "",
            "```",
            h["plan"],
            "```",
        ]
    )


TITLE = "Candidate-level evidence: recording decisions, and reason counts in the hot tier"


def reading(result: dict[str, Any]) -> str:
    r, h = result["recording"], result["hot_tier"]
    return "\n".join(
        [
            f"- Recording a decision costs {r['keep_reject_minus_bare']} µs per candidate over the bare loop "
            f"(goal: under 1 µs, {'met' if r['keep_reject_minus_bare'] < 1 else '**not met**'}): a counter "
            "increment, and an append while that reason's sample is not full.",
            f"- Counts per reason add {h['bytes_per_step_gained']} bytes to a filter step (the `jsonb` value and its "
            "GIN index entries).",
            f"- The reason query is {'served by the GIN index on `rejections` combined with the time index' if h['index_served'] else '**not index-served**'}"
            " (see the plan): no sequential scan.",
        ]
    )

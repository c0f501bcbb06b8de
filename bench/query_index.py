"""Is the cross-run query index-served at scale?

Loads N steps (10 per run, spread over 30 days, 30% of them filters, about 5% of filters
dropping more than 90%) straight into the tables, then runs the headline query
"filter steps, drop_ratio >= 0.9, last 24 h, 100 rows" through `xray_server.query` and the
same SQL directly with psycopg, interleaved, and prints EXPLAIN (ANALYZE, BUFFERS).
"""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

from xray_server.config import load_settings
from xray_server.db import Database
from xray_server.migrations import migrate
from xray_server.query import StepQuery, find_steps, step_query_sql

from .database import bench_database
from .stats import percentile

_LOAD_RUNS = """
INSERT INTO runs (run_id, pipeline, entity, status, started_at, ended_at)
SELECT md5('run' || g)::uuid, 'pipeline_' || (g %% 5), 'B0' || lpad((g %% 5000)::text, 8, '0'), 'ok',
       t, t + interval '2 seconds'
FROM (SELECT g, now() - random() * interval '30 days' AS t FROM generate_series(1, %(runs)s) g) x
"""
# Per run: llm, search, filter, filter, rank, filter, search, rank, select, custom.
_LOAD_STEPS = """
INSERT INTO steps (run_id, step_id, seq, name, step_type, status, started_at, ended_at,
                   candidates_in, candidates_out, drop_ratio, model, temperature, why,
                   start_ts, start_event_id, end_event_id)
SELECT run_id, md5(run_id::text || seq)::uuid, seq, name, step_type, 'ok', at, at + interval '150 ms',
       cin, cout, CASE WHEN cin IS NULL THEN NULL ELSE 1 - cout::float8 / cin END,
       CASE WHEN step_type = 'llm' THEN 'fake-llm-1' END, CASE WHEN step_type = 'llm' THEN 0.2 END,
       'kept candidates of the same category', at, md5('start' || run_id::text || seq)::uuid,
       md5('end' || run_id::text || seq)::uuid
FROM (
  SELECT r.run_id, s.seq, (ARRAY['generate_keywords','search_catalogue','compat_filter','price_filter',
            'rank_candidates','brand_filter','search_related','rerank','select_best','audit'])[s.seq + 1] AS name,
         (ARRAY['llm','search','filter','filter','rank','filter','search','rank','select','custom'])[s.seq + 1]
            AS step_type,
         r.started_at + s.seq * interval '200 ms' AS at,
         CASE WHEN s.seq IN (2, 3, 4, 5, 7) THEN 2000 END AS cin,
         CASE WHEN s.seq IN (2, 3, 4, 5, 7) THEN
              CASE WHEN random() < 0.05 THEN (random() * 190)::int ELSE 200 + (random() * 1700)::int END
         END AS cout
  FROM runs r CROSS JOIN generate_series(0, 9) AS s(seq)
) x
"""


def load(url: str, steps: int) -> dict[str, Any]:
    runs = steps // 10
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        started = time.perf_counter()
        conn.execute(_LOAD_RUNS, {"runs": runs})
        conn.execute(_LOAD_STEPS)
        conn.execute("VACUUM ANALYZE runs")
        conn.execute("VACUUM ANALYZE steps")
        seconds = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM steps").fetchone()[0]
        size = conn.execute("SELECT pg_total_relation_size('steps')").fetchone()[0]
    return {"steps": count, "runs": runs, "load_seconds": round(seconds, 1),
            "steps_bytes_per_row": round(size / count)}



def measure(url: str, q: StepQuery, repeat: int) -> dict[str, Any]:
    """Time the module call and the direct SQL, interleaved, so both see the same machine."""
    settings = load_settings({}, database_url=url, pool_min_size=1, pool_max_size=1)
    db = Database(url, settings, open_wait=True)
    statement, params = step_query_sql(q)
    module, direct = [], []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for _ in range(5):
            find_steps(db, q), conn.execute(statement, params).fetchall()
        for _ in range(repeat):
            t = time.perf_counter()
            rows = find_steps(db, q)["steps"]
            module.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            conn.execute(statement, params).fetchall()
            direct.append((time.perf_counter() - t) * 1000)
        plan = conn.execute(
            psycopg.sql.SQL("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ") + statement, params
        ).fetchall()
    db.close()
    plan_text = "\n".join(next(iter(row.values())) for row in plan)
    return {
        "rows": len(rows),
        "module_ms_p50": round(statistics.median(module), 3),
        "module_ms_p95": round(percentile(module, 0.95), 3),
        "direct_ms_p50": round(statistics.median(direct), 3),
        "direct_ms_p95": round(percentile(direct, 0.95), 3),
        "ratio_p95": round(percentile(module, 0.95) / percentile(direct, 0.95), 2),
        "index_served": "Seq Scan on steps" not in plan_text,
        "plan": plan_text,
    }


def add_arguments(parser) -> None:
    parser.add_argument("--steps", type=int, default=1_000_000, help="stored steps")
    parser.add_argument("--repeat", type=int, default=200, help="timed repetitions per query")


def run(args) -> dict[str, Any]:
    """Load `args.steps` steps and time the headline query and a rare-condition variant."""
    steps, repeat = args.steps, args.repeat
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    queries = {
        "filter, drop_ratio >= 0.9, last 24 h": StepQuery(step_type=["filter"], min_drop_ratio=0.9, since=since),
        "filter, drop_ratio >= 0.999, last 24 h (rare)": StepQuery(step_type=["filter"], min_drop_ratio=0.999,
                                                                   since=since),
    }
    with bench_database() as (url, where):
        result = {"database": where, "load": load(url, steps), "queries": {}}
        for label, q in queries.items():
            result["queries"][label] = measure(url, q, repeat)
    return result


def report(result: dict[str, Any]) -> str:
    load_ = result["load"]
    lines = [
        f"Database: {result['database']}. Loaded {load_['steps']:,} steps in {load_['runs']:,} runs "
        f"in {load_['load_seconds']} s; `steps` table + indexes: {load_['steps_bytes_per_row']} bytes per step.",
        "",
        "| query | rows | xray_server.query p50 / p95 (ms) | direct SQL p50 / p95 (ms) | p95 ratio | index-served |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in result["queries"].items():
        lines.append(f"| {label} | {m['rows']} | {m['module_ms_p50']} / {m['module_ms_p95']} | "
                     f"{m['direct_ms_p50']} / {m['direct_ms_p95']} | {m['ratio_p95']} | {m['index_served']} |")
    for label, m in result["queries"].items():
        lines += ["", f"EXPLAIN (ANALYZE, BUFFERS) for {label}:", "", "```", m["plan"], "```"]
    return "\n".join(lines)

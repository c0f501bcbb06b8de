"""Where the X-Ray server's CPU goes per stored step, by a sampling profiler, end to end.

As `bench ingest` does (SDK clients in their own processes sending filter steps, 50 a run, X-Ray
under gunicorn, the embedded PostgreSQL), while py-spy samples every gunicorn worker. Each sample's
stack is put in the first stage (in the order below) that one of its frames belongs to; a stage's CPU
per step is its share of the samples times the workers' CPU per stored step, measured over the
same window. The stages are the server's own modules, so a reader can go from a line here to the
code it names.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg

from xray_server.runtime.local_server import LocalServer
from xray_server.storage.migrations import migrate

from .database import bench_database
from .ingest import _CLIENT, _server_env, _tree_seconds

# (stage, what a frame of it contains), in the order they are tried.
STAGES = (
    ("validate an event (msgspec loader; marshmallow for the rest)", ("load_event (xray_server/schemas/events.py",)),
    ("prepare its row (bounds, metric contract, ids)", ("prepare (xray_server/ingest/rows.py",)),
    ("validate the run creations (marshmallow)", ("_load_creations (xray_server/ingest/multi_run.py",)),
    ("read the body (gunzip, JSON)", ("read_json_body (xray_server/web/request.py",)),
    ("PostgreSQL round trips (psycopg: send, wait, read)", ("psycopg/", "psycopg_pool/")),
    ("the rest of the batch (place, group, answer)", ("xray_server/",)),
    ("gunicorn and Flask, per request", ("flask/", "werkzeug/", "gunicorn/")),
)
OTHER = "other (threads, the interpreter)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=2, help="SDK client processes")
    parser.add_argument("--steps", type=int, default=40_000, help="steps per client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (one thread each)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's stacks here (collapsed, one file per worker)")


def stage_of(stack: list[str]) -> str:
    """The stage a sampled stack belongs to: the first of `STAGES` that one of its frames is in
    (the specific stages come first, the catch-alls last)."""
    for stage, marks in STAGES:
        if any(mark in frame for frame in stack for mark in marks):
            return stage
    return OTHER


def _tally(paths: list[Path]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack:
                counts[stage_of(stack.split(";"))] += int(n)
    return counts


def run(args: argparse.Namespace) -> dict[str, Any]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is missing: .venv/bin/pip install -e '.[bench]'")
    with bench_database() as (url, where), tempfile.TemporaryDirectory() as folder:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        with LocalServer(_server_env(url, args.workers, 1)) as server:
            master = psutil.Process(server.process.pid)
            workers = master.children()
            outputs = [Path(folder) / f"worker-{w.pid}.txt" for w in workers]
            spies = [
                subprocess.Popen(
                    [spy, "record", "--pid", str(w.pid), "--rate", str(args.rate), "--format", "raw"]
                    + ["--nonblocking", "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for w, out in zip(workers, outputs, strict=True)
            ]
            time.sleep(2)  # py-spy attached
            cpu_before = _tree_seconds(master)
            clients = [
                subprocess.Popen(
                    [sys.executable, "-c", _CLIENT, server.base_url, str(args.steps), f"{uuid.uuid4().hex[:8]}-{i}"],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for i in range(args.clients)
            ]
            for client in clients:
                client.communicate(timeout=3600)
            spent = _tree_seconds(master) - cpu_before
            for process in spies:
                process.send_signal(2)  # py-spy writes its file on SIGINT
                process.wait(timeout=60)
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM steps").fetchone()[0]
            counts = _tally(outputs)
            if args.raw:
                args.raw.mkdir(parents=True, exist_ok=True)
                for out in outputs:
                    shutil.copy(out, args.raw / out.name)
    total = sum(counts.values())
    per_step = spent / stored * 1e6
    order = [stage for stage, _ in STAGES] + [OTHER]
    return {
        "database": where,
        "clients": args.clients,
        "workers": args.workers,
        "steps_stored": stored,
        "samples": total,
        "server_cpu_us_per_step": round(per_step, 1),
        "stages": {
            stage: {"share": round(counts[stage] / total, 3), "us_per_step": round(counts[stage] / total * per_step, 1)}
            for stage in order
        },
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"Database: {result['database']}; {result['clients']} SDK client processes, gunicorn "
        f"{result['workers']}x1; {result['steps_stored']:,} steps stored; {result['samples']:,} samples. "
        f"The server's CPU: {result['server_cpu_us_per_step']} µs a stored step.",
        "",
        "| stage | share of samples | µs a step |",
        "|---|---|---|",
    ]
    for stage, s in result["stages"].items():
        lines.append(f"| {stage} | {s['share']:.1%} | {s['us_per_step']} |")
    return "\n".join(lines)


TITLE = "Where the server's CPU goes per stored step (py-spy, end to end)"


def reading(result: dict[str, Any]) -> str:
    stages = result["stages"]
    python = sum(s["us_per_step"] for name, s in stages.items() if name.startswith(("validate", "prepare")))
    return "\n".join(
        [
            f"- **Per event, in the server's Python**: validating an event and preparing its row take {round(python, 1)} "
            f"µs of the {result['server_cpu_us_per_step']} a step costs the server. Both are already the fast "
            "paths (msgspec for the wire shapes, a plain fast path for valid metrics); what is left is Python "
            "building dicts: the event as a dict, then its row as another, then the row's JSON.",
            "- **The next step** would be to build the row in compiled code: decode the body straight into msgspec "
            "structs (`msgspec.json.decode` with the event types), and write the rows' JSON from them, leaving "
            "Python only the metric contract. That removes most of both lines above; it means a second definition "
            "of the wire shapes beside marshmallow's, kept equal by the property test that guards the plain loader.",
        ]
    )

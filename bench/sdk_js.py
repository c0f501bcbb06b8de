"""What instrumenting a step costs a Node.js pipeline (the TypeScript SDK, `xray-sdk-js/`),
measured by `xray-sdk-js/bench/step_cost.mjs` against baselines in the same run.

1. Per-step cost in the caller's thread: an X-Ray step with three metrics and a `why`, against an
   OpenTelemetry JS span (`@opentelemetry/sdk-trace-base`) with three attributes, ended into a
   BatchSpanProcessor whose exporter discards, made current through AsyncLocalStorage as X-Ray's
   step is (`startActiveSpan`) and without (`startSpan`), against the bare step body. Rounds are
   interleaved; each step is timed alone. Node runs delivery on the pipeline's own thread, so each
   scenario's wall time and process CPU time per step are also given, including the flush (X-Ray:
   encoding, gzip, HTTP to a collector on the same machine) or export (discarded) after each round.
2. A whole step with the collector unreachable (blackholed: accepts and never answers; down:
   connection refused).
3. Memory every tenth of N steps with the collector blackholed, and down, each figure after a full
   garbage collection: the JavaScript heap in use (what stays alive) and the resident set size
   (which V8 gives back to the system only now and then).
4. Exit: seconds from a process's last step to its exit, with the collector blackholed or down, for
   a pipeline that neither finishes its run, flushes nor closes its client.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "xray-sdk-js"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=20_000, help="timed steps per scenario")
    parser.add_argument("--memory-steps", type=int, default=200_000, help="steps for the memory plateau")
    parser.add_argument("--full", action="store_true", help="headline sizes: 100k steps, 1M memory steps")


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("sdk_js needs Node.js 18 or later (node and npm on PATH)")
    if not (PACKAGE / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, check=True)
    subprocess.run([node, "scripts/build.mjs"], cwd=PACKAGE, check=True)
    return node


def run(args: argparse.Namespace) -> dict[str, Any]:
    steps = 100_000 if args.full else args.steps
    memory_steps = 1_000_000 if args.full else args.memory_steps
    command = [
        _node(),
        "--expose-gc",
        "bench/step_cost.mjs",
        "--steps",
        str(steps),
        "--memory-steps",
        str(memory_steps),
        "--json",
    ]
    out = subprocess.run(command, cwd=PACKAGE, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["sizes"] = {"steps": steps, "memory_steps": memory_steps}
    return result


def report(result: dict[str, Any]) -> str:
    p = result["per_step"]
    lines = [
        f"Node.js {result['node']}. Per-step cost ({result['sizes']['steps']:,} steps per scenario, 10 interleaved "
        "rounds):",
        "",
        "| scenario | median (us) | p99 (us) | wall per step, with delivery (us) | CPU per step, with delivery (us) |",
        "|---|---|---|---|---|",
    ]
    for name in ("bare", "opentelemetry_active", "opentelemetry_plain", "xray"):
        m = p[name]
        lines.append(
            f"| {name} | {m['median_us']} | {m['p99_us']} | {m['wall_us_per_step']} | {m['cpu_us_per_step']} |"
        )
    r = p["ratio_xray_to_opentelemetry"]
    lines += [
        "",
        f"X-Ray / OpenTelemetry (active span): median {r['median']}, p99 {r['p99']}; against a plain span, median "
        f"{r['median_vs_plain_span']}. With delivery: wall {r['wall']}, CPU {r['cpu']}. "
        f"X-Ray delivery in that run: {p['xray_delivery']}.",
        "",
        "Whole step with the collector unreachable:",
        "",
        "| collector | median (us) | p99 (us) |",
        "|---|---|---|",
    ]
    for name, m in result["unreachable_collector"].items():
        lines.append(f"| {name} | {m['median_us']} | {m['p99_us']} |")
    steps = result["sizes"]["memory_steps"]
    lines += [
        "",
        f"Memory over {steps:,} steps (MB at each tenth, after a full garbage collection):",
        "",
        "| collector | heap in use (MB) | RSS (MB) | worst step (us) | pending at end | dropped |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in result["memory"].items():
        heap = " → ".join(str(v) for v in m["heap_mb"])
        rss = " → ".join(str(v) for v in m["rss_mb"])
        lines.append(f"| {name} | {heap} | {rss} | {m['worst_step_us']} | {m['pending']} | {m['dropped']} |")
    lines += [
        "",
        "Exit of a process that leaves 5 steps queued (default client, no finish, flush or close):",
        "",
        "| collector | seconds from the last step to exit |",
        "|---|---|",
    ]
    for name, m in result["exit"].items():
        lines.append(f"| {name} | {m['seconds_after_last_step']} |")
    return "\n".join(lines)


TITLE = "The TypeScript SDK: what instrumenting a step costs a Node.js pipeline"


def goal_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 23's goals, each with the figure that decides it."""
    r = result["per_step"]["ratio_xray_to_opentelemetry"]
    worst = max(m["p99_us"] for m in result["unreachable_collector"].values())
    # The heap in use from the second tenth (the first holds the queue filling to its bound): RSS
    # moves with when V8 returns pages to the system, not with what the SDK keeps.
    growth = max(m["heap_mb"][-1] - m["heap_mb"][1] for m in result["memory"].values())
    exit_worst = max(m["seconds_after_last_step"] for m in result["exit"].values())
    verdict = {True: "met", False: "**not met**"}
    return [
        (
            "TypeScript SDK step vs an OpenTelemetry JS span: median ratio <= 0.7",
            f"median {r['median']}, p99 {r['p99']}",
            verdict[r["median"] <= 0.7],
        ),
        (
            "TypeScript SDK, collector blackholed or down: p99 step under 100 µs",
            f"worst p99 {worst} µs",
            verdict[worst < 100],
        ),
        (
            f"TypeScript SDK: memory flat over {result['sizes']['memory_steps']:,} steps with the collector unreachable",
            f"heap in use grew at most {round(growth, 1)} MB from the second tenth to the last",
            verdict[growth <= 10],
        ),
        (
            "TypeScript SDK: exit within 2 s of the last step, collector blackholed or down",
            f"worst {exit_worst} s",
            verdict[exit_worst <= 2.0],
        ),
    ]


def reading(result: dict[str, Any]) -> str:
    p = result["per_step"]
    r = p["ratio_xray_to_opentelemetry"]
    un = result["unreachable_collector"]
    flat = {name: (m["heap_mb"][1], m["heap_mb"][-1]) for name, m in result["memory"].items()}
    return "\n".join(
        [
            f"- **Against OpenTelemetry**: in the pipeline's code, an X-Ray step costs x{r['median']} of an "
            f"OpenTelemetry span made current (x{r['median_vs_plain_span']} of a plain one) at the median, and "
            f"x{r['p99']} at p99, in the same run (goal x0.7). It checks the metric contract, bounds its values "
            "and encodes what the pipeline handed over before it returns; the event's envelope is encoded later, "
            "by the delivery, as OpenTelemetry's processor leaves its spans to the exporter.",
            f"- **With delivery**: Node runs delivery on the pipeline's thread, between its awaits. Counting the "
            f"flush after each round, X-Ray costs x{r['wall']} of the span in wall time and x{r['cpu']} in CPU: it "
            "encodes, compresses and sends every event over HTTP to a collector on the same two cores, where the "
            "baseline's exporter discards its spans. That work happens when the pipeline waits (on a model, a "
            "search, a timer), never inside a step.",
            "- **Unreachable collector**: a whole step costs "
            + ", ".join(f"p99 {m['p99_us']} µs {name}" for name, m in un.items())
            + ": nothing waits on the network (goal: p99 under 100 µs).",
            "- **Memory**: the heap in use, second tenth → last: "
            + ", ".join(f"{a} → {b} MB {name}" for name, (a, b) in flat.items())
            + ": the queue fills to its bound, then new events are dropped and counted (`queue_full`). The "
            "resident set moves with when V8 gives pages back to the system, not with the steps.",
            "- **Exit**: nothing of the SDK keeps the process alive; at `beforeExit` the queued events get the "
            "client's `shutdownTimeoutMs` (1.5 s) to leave, and the process exits at that deadline when the "
            "collector never answers or is down.",
        ]
    )

"""The SDK's delivery thread, per step: what gzip costs and what it saves.

The Python SDK records real steps into its queue (its delivery held back), then the delivery
thread's work is timed per step on those items, in batches of the SDK's default size: building a
batch's body from the items' encoded JSON (spliced, never decoded again), gzip at level 1 as the
transport does, and the server's gunzip. The body is then sent over a TCP connection on this
machine (loopback) with and without gzip, the receiver reading (and, for gzip, decompressing) it,
and the process's CPU per step is measured for each. From the bytes saved and the CPU spent
follows the link speed below which gzip pays for itself.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import xray_sdk
from xray_sdk.delivery.worker import BATCH_PATH, DeliveryConfig, Item, _body, _Unit

# The shapes of step a pipeline records: the ingest benchmark's filter step, and a step that also
# keeps summaries of its input and output (an LLM step, say).
SHAPES = ("filter step: three metrics and a why", "llm step: model, input and output summaries")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=20_000, help="steps recorded per shape")
    parser.add_argument("--rounds", type=int, default=5)


def _record(shape: str, steps: int) -> list[Item]:
    """The queue's items after `steps` steps of `shape`, 50 steps a run (the delivery never sends)."""
    held = DeliveryConfig(
        max_queue_items=steps * 2,
        max_queue_bytes=2**31,
        batch_max_items=10**9,
        batch_max_bytes=2**40,
        flush_interval=3600.0,
    )
    client = xray_sdk.Client("http://127.0.0.1:9", delivery=held)
    for r in range(steps // 50):
        with client.start_run("delivery_bench", f"entity-{r}", tags={"env": "bench"}) as run:
            for i in range(50):
                if shape == SHAPES[0]:
                    with run.step("compat_filter", "filter") as step:
                        step.metrics(candidates_in=2000, candidates_out=40 + i).why("kept same-category candidates")
                else:
                    with run.step("keywords", "llm") as step:
                        step.model("gpt-4o-mini", temperature=0.2)
                        step.input({"title": f"Phone case for model {i}", "category": "phone_cases"})
                        step.output({"keywords": ["phone case", "slim case", f"model {i} cover"]})
                        step.why("keywords from the product title")
    items = list(client._delivery._queue)
    client.close(0)
    return items


def _batches(items: list[Item], size: int) -> list[_Unit]:
    return [_Unit(BATCH_PATH, items[k : k + size]) for k in range(0, len(items), size)]


def _per_step_us(fn: Callable[[Any], Any], inputs: list[Any], steps: int) -> float:
    started = time.perf_counter()
    for x in inputs:
        fn(x)
    return (time.perf_counter() - started) / steps * 1e6


def _loopback_cpu_us(bodies: list[bytes], steps: int, *, gzipped: bool) -> float:
    """Process CPU per step to send `bodies` over a loopback TCP connection and read them at the
    other end: gzip at level 1 before sending and gunzip after reading when `gzipped`."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    payloads: list[bytes] = []
    done = threading.Event()

    def receive() -> None:
        conn, _ = server.accept()
        with conn:
            for _ in bodies:
                size = int.from_bytes(conn.recv(8, socket.MSG_WAITALL), "big")
                data = bytearray()
                while len(data) < size:
                    data += conn.recv(min(size - len(data), 1 << 20))
                payloads.append(gzip.decompress(data) if gzipped else bytes(data))
        done.set()

    reader = threading.Thread(target=receive)
    reader.start()
    with socket.create_connection(("127.0.0.1", port)) as sender:
        started = time.process_time()
        for body in bodies:
            data = gzip.compress(body, compresslevel=1) if gzipped else body
            sender.sendall(len(data).to_bytes(8, "big") + data)
        done.wait()
        spent = time.process_time() - started
    reader.join()
    server.close()
    assert payloads == bodies, "the loopback lost or changed a body"
    return spent / steps * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    batch_items = DeliveryConfig().batch_max_items
    result: dict[str, Any] = {"steps": args.steps, "rounds": args.rounds, "batch_items": batch_items, "shapes": {}}
    for shape in SHAPES:
        items = _record(shape, args.steps)
        steps = sum(1 for i in items if i.kind == "event")
        units = _batches(items, batch_items)
        bodies = [_body(u) for u in units]
        packed = [gzip.compress(b, compresslevel=1) for b in bodies]
        times: dict[str, list[float]] = {k: [] for k in ("body", "gzip", "gunzip", "loopback_plain", "loopback_gzip")}
        for round_ in range(args.rounds):
            times["body"].append(_per_step_us(_body, units, steps))
            times["gzip"].append(_per_step_us(lambda b: gzip.compress(b, compresslevel=1), bodies, steps))
            times["gunzip"].append(_per_step_us(gzip.decompress, packed, steps))
            for gzipped in (False, True) if round_ % 2 == 0 else (True, False):
                key = "loopback_gzip" if gzipped else "loopback_plain"
                times[key].append(_loopback_cpu_us(bodies, steps, gzipped=gzipped))
        raw = sum(map(len, bodies)) / steps
        small = sum(map(len, packed)) / steps
        median = {k: round(statistics.median(v), 3) for k, v in times.items()}
        cpu = median["gzip"] + median["gunzip"]
        result["shapes"][shape] = {
            "items": len(items),
            "steps": steps,
            "bytes_per_step": round(raw, 1),
            "gzip_bytes_per_step": round(small, 1),
            "us_per_step": median,
            # Below this link speed, the time gzip saves on the wire exceeds the CPU it costs.
            "break_even_mb_per_s": round((raw - small) / cpu, 1),
        }
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['steps']:,} steps recorded per shape, 50 a run, in batches of {result['batch_items']} items "
        f"(the SDK's default), median of {result['rounds']} rounds. Per step:",
        "",
        "| shape | bytes | gzip bytes | build the body (µs) | gzip level 1 (µs) | server gunzip (µs) "
        "| loopback CPU, plain (µs) | loopback CPU, gzip (µs) | gzip pays below |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, s in result["shapes"].items():
        t = s["us_per_step"]
        lines.append(
            f"| {shape} | {s['bytes_per_step']} | {s['gzip_bytes_per_step']} | {t['body']} | {t['gzip']} | "
            f"{t['gunzip']} | {t['loopback_plain']} | {t['loopback_gzip']} | {s['break_even_mb_per_s']} MB/s |"
        )
    return "\n".join(lines)


TITLE = "The SDK's delivery thread: what gzip costs a step and what it saves"


def reading(result: dict[str, Any]) -> str:
    shapes = list(result["shapes"].values())
    low = min(s["break_even_mb_per_s"] for s in shapes)
    high = max(s["break_even_mb_per_s"] for s in shapes)
    ratio = max(s["us_per_step"]["loopback_gzip"] / s["us_per_step"]["loopback_plain"] for s in shapes)
    build = max(s["us_per_step"]["body"] for s in shapes)
    return "\n".join(
        [
            f"- **Building a batch** costs at most {build} µs a step: each event was encoded once, when the step "
            "ended, and the body splices those bytes (a run's id in front of each event), never decoding them.",
            f"- **gzip pays below {low} to {high} MB/s**: the bytes it saves, divided by the CPU it costs at both "
            "ends. These steps repeat their text from one to the next, as a pipeline's steps of one kind do; "
            "more varied text compresses less, which lowers that speed. Between machines (a LAN under load, a region away, the internet) a link is slower than that, "
            f"and gzip is kept there. On this machine's loopback it costs up to x{round(ratio, 2)} the CPU of "
            "sending the plain body, and saves nothing a pipeline waits for: the SDK sends plain JSON to a "
            "loopback address (`127.0.0.0/8`, `::1`, `localhost`) and gzip elsewhere.",
        ]
    )

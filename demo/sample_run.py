"""Start X-Ray (embedded PostgreSQL + gunicorn), send a few competitor-selection runs over
HTTP, and answer the contract's debugging questions from the API alone.

    python demo/sample_run.py            # uses ./.xray for the embedded database
    python demo/sample_run.py --url http://127.0.0.1:8000   # an X-Ray already running

This is the first slice of the demo: the events are written by hand here; the SDK and the
full demo pipeline replace them in later issues.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xray_server.local_server import LocalServer  # noqa: E402

PRODUCTS = [
    ("B0PHONECASE1", "phone_case"), ("B0PHONECASE2", "phone_case"), ("B0PHONECASE3", "phone_case"),
    ("B0LAPTOPSTND", "laptop_stand"), ("B0USBCABLE01", "cable"), ("B0HEADPHONE1", "headphones"),
]


def api(base: str, method: str, path: str, body: object = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path} failed: {error.code} {error.read().decode()}") from None


def run_events(category: str, rng: random.Random, start: datetime) -> list[dict]:
    """One run's events. The compatibility filter compares categories case-sensitively, and
    the catalogue spells phone cases 'Phone_Case': so it drops nearly every right candidate."""
    found = rng.randint(1500, 3000)
    kept = rng.randint(5, 20) if category == "phone_case" else int(found * rng.uniform(0.3, 0.6))
    ranked = min(kept, 10)
    winner = "B0LAPTOPSTND" if category == "phone_case" else f"B0{category.upper()[:6]}9"
    steps = [
        ("generate_keywords", "llm", {"model": "fake-llm-1", "temperature": 0.2},
         {"keywords": [category.replace("_", " "), "cover", "slim"]}, "5 keywords from the title"),
        ("search_catalogue", "search", {"results": found}, {"hits": found}, f"{found} hits across 40 categories"),
        ("compat_filter", "filter", {"candidates_in": found, "candidates_out": kept}, {"kept": kept},
         f"kept candidates whose category equals '{category}'"),
        ("rank_candidates", "rank", {"candidates_in": kept, "candidates_out": ranked, "score_max": 0.91},
         {"top": winner}, "cosine similarity of titles"),
        ("select_best", "select", {"chosen": 1}, {"asin": winner}, f"highest score: {winner}"),
    ]
    events, at = [], start
    for seq, (name, step_type, metrics, output, why) in enumerate(steps):
        step_id = str(uuid.uuid4())
        events.append({"event_id": str(uuid.uuid4()), "type": "step_start", "ts": at.isoformat(),
                       "step_id": step_id, "seq": seq, "name": name, "step_type": step_type})
        at += timedelta(milliseconds=rng.randint(20, 400))
        events.append({"event_id": str(uuid.uuid4()), "type": "step_end", "ts": at.isoformat(),
                       "step_id": step_id, "seq": seq, "name": name, "step_type": step_type,
                       "status": "ok", "metrics": metrics, "output": output, "why": why})
    events.append({"event_id": str(uuid.uuid4()), "type": "run_finish", "ts": at.isoformat(),
                   "status": "ok", "outcome": {"competitor": winner}})
    return events


def send_runs(base: str, count: int) -> None:
    rng = random.Random(42)
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    for i in range(count):
        asin, category = PRODUCTS[i % len(PRODUCTS)]
        run = api(base, "POST", "/api/v1/runs", {"pipeline": "competitor_selection", "entity": asin,
                                                  "tags": {"category": category}})
        api(base, "POST", f"/api/v1/runs/{run['run_id']}/events",
            {"events": run_events(category, rng, start + timedelta(minutes=i))})
    print(f"sent {count} runs of pipeline 'competitor_selection'\n")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)) for line in lines)


def walkthrough(base: str) -> None:
    query = "/api/v1/steps?pipeline=competitor_selection&step_type=filter&min_drop_ratio=0.9&since=24h"
    bad = api(base, "GET", query)["steps"]
    print(f"1. Cross-run query: GET {query}")
    print(table([[s["run_id"][:8], s["entity"], s["name"], s["metrics"]["candidates_in"],
                  s["metrics"]["candidates_out"], f"{s['metrics']['drop_ratio']:.3f}"] for s in bad],
                ["run", "entity", "step", "in", "out", "drop_ratio"]))
    if not bad:
        return
    run = api(base, "GET", f"/api/v1/runs/{bad[0]['run_id']}")
    print(f"\n2. One bad run: GET /api/v1/runs/{run['run_id']}  (entity {run['entity']}, "
          f"outcome {run['outcome']})")
    print(table([[s["seq"], s["name"], s["step_type"], s["status"],
                  ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in s["metrics"].items()),
                  s["why"]] for s in run["steps"]], ["seq", "step", "type", "status", "metrics", "why"]))
    worst = max(run["steps"], key=lambda s: s["metrics"].get("drop_ratio", 0) if s["step_type"] == "filter" else -1)
    print(f"\n3. The failing step: '{worst['name']}' removed {worst['metrics']['drop_ratio']:.1%} of "
          f"{worst['metrics']['candidates_in']} candidates ({worst['why']}),\n   so the ranker only "
          f"saw {worst['metrics']['candidates_out']} and picked {run['outcome']['competitor']}.")
    entities = sorted({s["entity"] for s in bad})
    print(f"\n4. The pattern: '{worst['name']}' dropped more than 90% in {len(bad)} runs, "
          f"all for entities {', '.join(entities)}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an X-Ray server already running; default: start one")
    parser.add_argument("--runs", type=int, default=24)
    args = parser.parse_args()
    if args.url:
        send_runs(args.url, args.runs)
        walkthrough(args.url)
        return
    Path(".xray").mkdir(exist_ok=True)
    print("starting X-Ray (embedded PostgreSQL in ./.xray, gunicorn on a free port)...")
    with LocalServer({"XRAY_DATABASE_URL": None, "XRAY_WORKERS": "1"}, log_path=Path(".xray/server.log")) as server:
        print(f"X-Ray is up at {server.base_url}\n")
        send_runs(server.base_url, args.runs)
        walkthrough(server.base_url)


if __name__ == "__main__":
    main()

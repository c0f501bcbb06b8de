"""`python -m bench NAME [options]`: run a benchmark, print its table, optionally save JSON."""
from __future__ import annotations

import argparse
import json
import platform
import os
from datetime import datetime, timezone
from pathlib import Path

from . import query_index

BENCHMARKS = {"query_index": query_index}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--steps", type=int, default=1_000_000, help="stored steps (query_index)")
    parser.add_argument("--repeat", type=int, default=200, help="timed repetitions per query")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    module = BENCHMARKS[args.name]
    result = module.run(steps=args.steps, repeat=args.repeat)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    print(f"Machine: {result['machine']}; date {result['date']}.\n")
    print(module.report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

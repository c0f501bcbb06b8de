"""`python -m bench NAME [options]`: run one benchmark, print its table, optionally save JSON."""
from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from . import artifacts, decisions, ingest, query, sdk_overhead, server_path

BENCHMARKS = {"artifacts": artifacts, "decisions": decisions, "ingest": ingest, "query": query, "sdk_overhead": sdk_overhead,
              "server_path": server_path}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)
    for name, module in BENCHMARKS.items():
        sub = commands.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    module = BENCHMARKS[args.name]
    result = module.run(args)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    print(f"Machine: {result['machine']}; date {result['date']}.\n")
    print(module.report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""`python -m bench NAME [options]`: run one benchmark, print its table, optionally save JSON.
`python -m bench report`: regenerate BENCHMARKS.md and the chart from bench/results/*.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import (
    artifacts,
    decisions,
    explain_eval,
    export,
    ingest,
    months,
    patterns,
    query,
    real_eval,
    report,
    sdk_delivery,
    sdk_js,
    sdk_overhead,
    server_path,
    server_profile,
)

BENCHMARKS = {
    "ingest": ingest,
    "server_path": server_path,
    "server_profile": server_profile,
    "query": query,
    "sdk_overhead": sdk_overhead,
    "sdk_js": sdk_js,
    "sdk_delivery": sdk_delivery,
    "artifacts": artifacts,
    "decisions": decisions,
    "patterns": patterns,
    "explain_eval": explain_eval,
    "real_eval": real_eval,
    "export": export,
    "months": months,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)
    for name, module in BENCHMARKS.items():
        sub = commands.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.add_argument("--json", type=Path, help="also write the result here")
    writer = commands.add_parser("report", help="regenerate BENCHMARKS.md and the chart from bench/results")
    writer.add_argument("--results", type=Path, default=report.RESULTS, help="where the JSON results are")
    writer.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    if args.name == "report":
        print(f"wrote {report.write(args.results, args.out)}")
        return
    module = BENCHMARKS[args.name]
    result = module.run(args)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    result["command"] = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"Machine: {result['machine']}; date {result['date']}.\n")
    print(module.report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""`xray demo`: run the demo pipeline through the SDK and print the debugging walkthrough."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from xray_cli import render
from xray_cli.api import Api


@click.command()
@click.option(
    "--url",
    help="An X-Ray server already running; default: start one (embedded PostgreSQL unless XRAY_DATABASE_URL is set).",
)
@click.option("--runs", type=int, default=300, show_default=True, help="Pipeline runs, over as many products.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the catalogue and product choice.")
@click.option("--json", "as_json", is_flag=True, help="Print the walkthrough as JSON.")
def demo(url: str | None, runs: int, seed: int, as_json: bool) -> None:
    """Run the competitor-selection demo and show which step failed and why."""
    if url:
        return _run(url, runs, seed, as_json)
    from xray_cli.serving import require_server_extra

    require_server_extra("demo")
    from xray_server.runtime.local_server import LocalServer

    data_dir = Path(".xray")
    data_dir.mkdir(exist_ok=True)
    say = (lambda text: None) if as_json else click.echo
    say("Starting X-Ray (embedded PostgreSQL in ./.xray unless XRAY_DATABASE_URL is set; gunicorn on a free port)...")
    with LocalServer({"XRAY_WORKERS": "2"}, log_path=data_dir / "demo-server.log") as server:
        say(f"X-Ray is up at {server.base_url}")
        _run(server.base_url, runs, seed, as_json)


def _run(url: str, runs: int, seed: int, as_json: bool) -> None:
    import xray_sdk
    from xray_demo import catalogue, pipeline
    from xray_demo.walkthrough import walkthrough, walkthrough_text

    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    products_ = catalogue.build(seed)
    products = random.Random(seed).sample(products_, min(runs, len(products_)))
    client = xray_sdk.Client(url, capture="sample")
    started = time.monotonic()
    for product in products:
        pipeline.find_competitor(client, product, products_)
    client.flush(30)
    elapsed = time.monotonic() - started
    stats = client.stats()
    client.close()
    result = walkthrough(Api(url), pipeline.PIPELINE, since)
    result["sent"] = {
        "runs": runs,
        "seconds": round(elapsed, 1),
        "events_sent": stats["sent"],
        "events_dropped": stats["dropped_total"],
    }
    if as_json:
        return render.emit_json(result)
    click.echo(
        f"Ran {runs} runs of '{pipeline.PIPELINE}' in {elapsed:.1f} s through the SDK "
        f"({stats['sent']} events sent, {stats['dropped_total']} dropped).\n"
    )
    click.echo(walkthrough_text(result))
    click.echo(
        "\nExplore further: start the server on the same data with `xray serve` (the embedded database "
        "keeps it in ./.xray), then try `xray runs`, `xray show RUN_ID`, `xray explain RUN_ID`, "
        "`xray diff RUN_A RUN_B`, `xray steps --type filter --min-drop-ratio 0.9 --since 24h`."
    )

"""The options the commands share, and how each becomes a query parameter of the API: one
definition of a flag, its help and its parsing for every command that takes it."""

from __future__ import annotations

from typing import Any

import click

from xray_cli.api import default_url
from xray_sdk.contract.tags import split_tag
from xray_sdk.contract.vocabulary import STEP_STATUSES, STEP_TYPES

url_option = click.option(
    "--url", default=default_url, show_default="XRAY_ENDPOINT or http://127.0.0.1:8000", help="The X-Ray server."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
tag_option = click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs with this tag (KEY=VALUE or KEY:VALUE); repeat to require several.",
)
outcome_option = click.option(
    "--outcome",
    "outcome",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs whose outcome has this top-level value (a wrong answer, not an error: correct=false).",
)
metadata_option = click.option(
    "--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="Only runs whose metadata has this value."
)
cursor_option = click.option("--cursor", help="Resume after the page that gave this cursor.")
all_option = click.option("--all", "all_pages", is_flag=True, help="Follow the cursors: every matching row.")


def tag_filters(tags: tuple[str, ...], flag: str = "--tag") -> list[str]:
    """`key=value` or `key:value` (split at the first of the two), as the API takes them."""
    filters = []
    for tag in tags:
        try:
            key, value = split_tag(tag)
        except ValueError:
            raise click.BadParameter(f"{tag!r} is not KEY=VALUE", param_hint=flag) from None
        filters.append(f"{key}:{value}")
    return filters


_STEP_FILTERS = (
    click.option(
        "--type", "step_type", multiple=True, type=click.Choice(STEP_TYPES), help="Step type; repeat for several."
    ),
    click.option("--name", help="Step name."),
    click.option("--status", type=click.Choice(STEP_STATUSES)),
    click.option("--min-drop-ratio", type=float),
    click.option("--max-drop-ratio", type=float),
    click.option(
        "--violations/--no-violations", default=None, help="Only steps with (or without) contract violations."
    ),
    click.option(
        "--violation",
        help="Only steps with this contract violation, or any of its kind (unknown_step_type, missing_metric).",
    ),
    click.option("--reason", help="Only steps in which this rejection reason removed candidates."),
    click.option(
        "--min-reason-share", type=float, help="With --reason: it removed at least this share of the candidates."
    ),
)


def step_filter_options(fn: Any) -> Any:
    """The step filters `xray steps` and `xray patterns` share (those of `/steps`)."""
    for option in reversed(_STEP_FILTERS):
        fn = option(fn)
    return fn


def step_filter_params(step_type: tuple[str, ...], violations: bool | None, **rest: Any) -> dict[str, Any]:
    """The step filters as query parameters."""
    return {"step_type": list(step_type), "violations": None if violations is None else str(violations).lower(), **rest}


def run_filter_options(fn: Any) -> Any:
    """The filters on a run's tags, outcome and metadata, as every listing and export takes them."""
    for option in (metadata_option, outcome_option, tag_option):
        fn = option(fn)
    return fn


def run_filter_params(tags: tuple[str, ...], outcome: tuple[str, ...], metadata: tuple[str, ...]) -> dict[str, Any]:
    """Those filters as query parameters (`key:value`, the API's form)."""
    return {
        "tag": tag_filters(tags),
        "outcome": tag_filters(outcome, "--outcome"),
        "metadata": tag_filters(metadata, "--metadata"),
    }


def window_options(fn: Any) -> Any:
    """`--since` and `--until`, the time window of a listing or an export."""
    fn = click.option("--until")(fn)
    return click.option("--since", help="RFC 3339, or an age such as 30m, 24h, 7d.")(fn)

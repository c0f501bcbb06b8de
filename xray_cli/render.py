"""Terminal output: aligned tables, colour only when writing to a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from xray_sdk.contract.vocabulary import StepStatus

_STATUS_COLOURS = {StepStatus.OK.value: "green", StepStatus.ERROR.value: "red", StepStatus.RUNNING.value: "yellow"}


def colour_enabled() -> bool:
    return sys.stdout.isatty()


def paint(text: str, colour: str | None = None, bold: bool = False) -> str:
    """`text` in colour when stdout is a terminal."""
    if not colour_enabled() or (colour is None and not bold):
        return text
    return click.style(text, fg=colour, bold=bold)


def status(value: str) -> str:
    return paint(value, _STATUS_COLOURS.get(value))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, max_width: int = 60) -> str:
    """Rows under a header, each column as wide as its widest cell (capped)."""
    cells = [[_cell(value, max_width) for value in row] for row in rows]
    widths = [max([len(h)] + [len(_plain(row[i])) for row in cells]) for i, h in enumerate(header)]
    lines = [
        "  ".join(paint(h.ljust(w), bold=True) for h, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        lines.append("  ".join(c + " " * (w - len(_plain(c))) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def metrics(values: dict[str, Any]) -> str:
    """`name=value` pairs, ratios to three decimals."""
    return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def preview(value: Any, max_chars: int) -> str:
    """A value as compact JSON, cut to `max_chars` with an ellipsis."""
    text = (
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    )
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def tags(values: dict[str, Any] | None) -> str:
    """`key=value` pairs, as `--tag` takes them."""
    return " ".join(f"{k}={v}" for k, v in (values or {}).items()) or "-"


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else str(value)
    plain = _plain(text)
    if len(plain) > max_width and plain == text:
        return text[: max_width - 1] + "…"
    return text


def _plain(text: str) -> str:
    return click.unstyle(text)

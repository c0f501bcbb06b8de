"""The `xray` command. Its commands need `click` (the `cli` extra, which the `server` extra
includes): without it, `xray` says which extra to install instead of failing with a traceback."""

from __future__ import annotations

import sys
from typing import Any

MISSING_CLI = "the xray command needs its extra: pip install 'xray-decisions[cli]' (or '[server]' to serve as well)"

try:
    from xray_cli.commands import main
except ModuleNotFoundError as missing:  # pragma: no cover - exercised in a venv without click
    if missing.name != "click":
        raise

    def main(*args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
        sys.exit(MISSING_CLI)


__all__ = ["main"]

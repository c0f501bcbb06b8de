"""A read client for scripts and notebooks: every step or run of a filtered query, in one call.

    from xray_cli.read import steps
    df = steps(pipeline="ticket_routing", step_type="filter", since="1h").to_pandas()

It streams the server's export (`GET /api/v1/steps/export?format=jsonl`): no page or cursor to
follow, and each step row carries its run's pipeline, entity, status, tags, outcome and labels.
Standard library only (pandas is needed for `to_pandas` alone), so it works wherever the SDK does.
Filters are the query parameters of `/steps` and `/runs`: a list repeats one (`tag=["a:1",
"b:2"]`); tags, outcome and metadata take `key:value` or `key=value`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from xray_sdk.client import DEFAULT_ENDPOINT


class ReadError(Exception):
    """The server refused the query (the message names the parameter), or could not be reached."""


class Rows:
    """The rows of one export, read as they arrive: iterate, or collect with `to_list`/`to_pandas`."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout) as response:
                for line in response:
                    if line.strip():
                        yield json.loads(line)
        except urllib.error.HTTPError as error:
            raise ReadError(f"{error.code}: {_detail(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ReadError(f"cannot reach X-Ray at {self._url.split('/api/')[0]} ({error})") from None

    def to_list(self) -> list[dict[str, Any]]:
        return list(self)

    def to_pandas(self) -> Any:
        """A DataFrame, one row a step (or run). `tags`, `outcome` and `metadata` become columns
        of their own (`tags.language`); `rejections` become one count column per reason seen,
        0 where a step did not give that reason (never missing); `metrics` are flattened too."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas (to_list needs nothing)") from None
        rows = self.to_list()
        reasons = sorted({reason for row in rows for reason in (row.get("rejections") or {})})
        flat = []
        for row in rows:
            out = {k: v for k, v in row.items() if k not in _NESTED}
            for key in _NESTED:
                if isinstance(row.get(key), dict) and key != "rejections":
                    out.update({f"{key}.{k}": v for k, v in row[key].items()})
            if "rejections" in row:
                given = row.get("rejections") or {}
                out.update({f"rejections.{reason}": given.get(reason, 0) for reason in reasons})
            flat.append(out)
        frame = pd.DataFrame(flat)
        for column in ("started_at", "ended_at"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


_NESTED = ("tags", "outcome", "metadata", "metrics", "rejections")


def steps(url: str | None = None, *, timeout: float = 300.0, **filters: Any) -> Rows:
    """Every step matching `filters` (those of `GET /api/v1/steps`), newest first."""
    return Rows(_export_url(url, "/api/v1/steps/export", filters), timeout)


def runs(url: str | None = None, *, timeout: float = 300.0, **filters: Any) -> Rows:
    """Every run matching `filters` (those of `GET /api/v1/runs`), newest first."""
    return Rows(_export_url(url, "/api/v1/runs/export", filters), timeout)


def _export_url(url: str | None, path: str, filters: dict[str, Any]) -> str:
    base = (url or os.environ.get("XRAY_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    pairs = [("format", "jsonl")]
    for key, value in filters.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return f"{base}{path}?{urllib.parse.urlencode(pairs)}"


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error)["error"]
        fields = (detail.get("details") or {}).get("fields")
        return f"{detail.get('message')}" + (f" {fields}" if fields else "")
    except Exception:
        return str(error.reason)

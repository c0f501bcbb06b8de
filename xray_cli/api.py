"""The HTTP client the debugging commands use, so they work against any X-Ray server."""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import click

from xray_sdk.client import DEFAULT_ENDPOINT as DEFAULT_URL


def segment(value: str) -> str:
    """`value` as one path segment: an id can never reach another endpoint."""
    return urllib.parse.quote(value, safe="")


def default_url() -> str:
    """XRAY_ENDPOINT (the SDK's variable too), else the local default."""
    return os.environ.get("XRAY_ENDPOINT") or DEFAULT_URL


class Api:
    """GET JSON; any failure becomes a ClickException that says what to do."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(
            [
                (k, v)
                for k, values in params.items()
                if values is not None
                for v in (values if isinstance(values, (list, tuple)) else [values])
            ]
        )
        return self._call("GET", path + (f"?{query}" if query else ""))

    def post(self, path: str, body: Any) -> Any:
        """POST JSON, answer the JSON reply."""
        return self._call("POST", path, json.dumps(body).encode("utf-8"))

    def run(self, run_id: str) -> Any:
        """One run's view (`GET /api/v1/runs/<run_id>`), the id kept to one path segment."""
        return self.get(f"/api/v1/runs/{segment(run_id)}")

    def get_all(self, path: str, key: str, limit: int = 1000, **params: Any) -> list[Any]:
        """Every row of a paginated endpoint, following `next_cursor`."""
        rows: list[Any] = []
        cursor = None
        while True:
            page = self.get(path, limit=limit, cursor=cursor, **params)
            rows += page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    def _call(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise click.ClickException(_describe(error)) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            raise click.ClickException(
                f"cannot reach X-Ray at {self.base_url} ({getattr(error, 'reason', error)}); "
                "start it with `xray serve`, or pass --url / set XRAY_ENDPOINT"
            ) from None


def _describe(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error)["error"]
        fields = detail.get("details", {}).get("fields")
        return f"{error.code} {detail['code']}: {detail['message']}" + (f" {fields}" if fields else "")
    except Exception:
        return f"{error.code} {error.reason}"

"""The HTTP client the debugging commands use, so they work against any X-Ray server."""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import click

from xray_sdk.client import DEFAULT_ENDPOINT as DEFAULT_URL

_FULL_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
_PREFIX = re.compile(r"[0-9a-f-]{1,35}")
# An ambiguous prefix lists this many of the runs it starts.
_SHOWN_MATCHES = 10


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
        return self._call("GET", path + _query(params))

    def stream(self, path: str, **params: Any) -> Iterator[bytes]:
        """The blocks of a streamed answer (an export), as they arrive."""
        request = urllib.request.Request(self.base_url + path + _query(params))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                while block := response.read(1 << 16):
                    yield block
        except urllib.error.HTTPError as error:
            raise click.ClickException(_describe(error)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise click.ClickException(
                f"cannot reach X-Ray at {self.base_url} ({getattr(error, 'reason', error)}); "
                "start it with `xray serve`, or pass --url / set XRAY_ENDPOINT"
            ) from None

    def post(self, path: str, body: Any) -> Any:
        """POST JSON, answer the JSON reply."""
        return self._call("POST", path, json.dumps(body).encode("utf-8"))

    def resolve(self, run_id: str) -> str:
        """The full id of the one run whose id is, or starts with, `run_id` (hex digits, dashes
        optional); anything else is passed on for the server to refuse, naming the field."""
        text = run_id.strip().lower()
        if _FULL_ID.fullmatch(text) or not _PREFIX.fullmatch(text):
            return run_id
        found = self.get("/api/v1/runs", id_prefix=text, limit=_SHOWN_MATCHES + 1)["runs"]
        if len(found) == 1:
            return str(found[0]["run_id"])
        if not found:
            raise click.ClickException(f"no run id starts with {run_id!r}; `xray runs` lists the recent runs")
        listed = "\n".join(
            f"  {r['run_id']}  {r['pipeline']}  {r['entity']}  {r['started_at']}" for r in found[:_SHOWN_MATCHES]
        )
        more = "\n  ..." if len(found) > _SHOWN_MATCHES else ""
        raise click.ClickException(f"{run_id!r} starts more than one run id; type more of it:\n{listed}{more}")

    # ------------------------------------------------------------------ one method an endpoint

    def run(self, run_id: str) -> Any:
        """One run's view (`GET /api/v1/runs/<run_id>`), the id kept to one path segment."""
        return self.get(f"/api/v1/runs/{segment(run_id)}")

    def runs(self, **params: Any) -> Any:
        """A page of runs (`GET /api/v1/runs`)."""
        return self.get("/api/v1/runs", **params)

    def steps(self, **params: Any) -> Any:
        """A page of steps across runs (`GET /api/v1/steps`)."""
        return self.get("/api/v1/steps", **params)

    def reasons(self, **params: Any) -> Any:
        """Rejection reasons across runs (`GET /api/v1/steps/reasons`)."""
        return self.get("/api/v1/steps/reasons", **params)

    def explain(self, run_id: str, baseline_runs: int | None = None) -> Any:
        """What went wrong in a run and why (`GET /api/v1/runs/<run_id>/explain`)."""
        return self.get(f"/api/v1/runs/{segment(run_id)}/explain", baseline_runs=baseline_runs)

    def why_dropped(self, run_id: str, candidate_id: str) -> Any:
        """Which step dropped a candidate (`GET /api/v1/runs/<run_id>/why-dropped`)."""
        return self.get(f"/api/v1/runs/{segment(run_id)}/why-dropped", candidate=candidate_id)

    def diff(self, run_a: str, run_b: str) -> Any:
        """Two runs lined up step by step (`GET /api/v1/runs/<a>/diff/<b>`)."""
        return self.get(f"/api/v1/runs/{segment(run_a)}/diff/{segment(run_b)}")

    def label(self, run_id: str, judgement: dict[str, Any]) -> Any:
        """Judge one run (`POST /api/v1/runs/<run_id>/labels`)."""
        return self.post(f"/api/v1/runs/{segment(run_id)}/labels", judgement)

    def labels(self, judgements: list[dict[str, Any]]) -> Any:
        """Judge many runs in one request (`POST /api/v1/labels`)."""
        return self.post("/api/v1/labels", {"labels": judgements})

    def patterns(self, **params: Any) -> Any:
        """What the bad runs have in common (`GET /api/v1/patterns`)."""
        return self.get("/api/v1/patterns", **params)

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


def _query(params: dict[str, Any]) -> str:
    """`?k=v&...` for the parameters given (None: not sent; a list: repeated)."""
    query = urllib.parse.urlencode(
        [
            (k, v)
            for k, values in params.items()
            if values is not None
            for v in (values if isinstance(values, (list, tuple)) else [values])
        ]
    )
    return f"?{query}" if query else ""


# The API's parameter names whose command-line flag is not `--` and the name with dashes.
_FLAGS = {"step_type": "--type", "run_label": "--run-label", "label": "--label", "predicate": "a filter"}


def flag(parameter: str) -> str:
    """The command-line flag of an API parameter, as a user of the CLI typed it."""
    return _FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def _describe(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error)["error"]
    except Exception:
        return f"{error.code} {error.reason}"
    fields = (detail.get("details") or {}).get("fields")
    if not isinstance(fields, dict) or not fields:
        return f"{error.code} {detail.get('code')}: {detail.get('message')}"
    problems = "; ".join(f"{flag(name)}: {' '.join(_messages(problem))}" for name, problem in fields.items())
    return f"{error.code} {detail.get('code')}: {problems}"


def _messages(problem: Any) -> list[str]:
    """The messages of one field's problem, however deep marshmallow nested them (by list index)."""
    if isinstance(problem, str):
        return [problem]
    if isinstance(problem, dict):
        return [m for value in problem.values() for m in _messages(value)]
    if isinstance(problem, list):
        return [m for value in problem for m in _messages(value)]
    return [str(problem)]

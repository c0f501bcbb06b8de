"""Rows of the hot tier as the API shows them: runs, steps and artifact references.

Each view is projected from its response schema (`schemas/responses.py`), the one definition of
its shape: the schema says which keys a view has and in which order; this module says only how
the computed ones are computed. Plain keys are copied by `operator.itemgetter`, so a page of 100
steps costs what the hand-written dicts cost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from xray_sdk.contract.vocabulary import STANDARD_METRICS, ArtifactStatus
from xray_server.errors import ValidationFailed
from xray_server.jsonio import iso_utc
from xray_server.query import cursor as cursors
from xray_server.schemas import responses
from xray_server.schemas.views import Row, projector


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _iso_of(column: str) -> Callable[[Row], str | None]:
    return lambda r: None if r[column] is None else iso_utc(r[column])


def _duration_ms(r: Row) -> float | None:
    start, end = r["started_at"], r["ended_at"]
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def merged_metrics(r: Row) -> dict[str, Any]:
    """The standard metric columns that are set, and the custom metrics, as one object."""
    merged = {name: r[name] for name in STANDARD_METRICS if r[name] is not None}
    merged.update(r["metrics"] or {})
    return merged


def _link(a: Row) -> str | None:
    return f"/api/v1/artifacts/{a['artifact_id']}" if a["status"] == ArtifactStatus.STORED.value else None


_TIMES = {"started_at": _iso_of("started_at"), "ended_at": _iso_of("ended_at"), "duration_ms": _duration_ms}
_STEP = dict(
    _TIMES,
    metrics=merged_metrics,
    contract_violations=lambda r: r["contract_violations"] or [],
    rejections=lambda r: r["rejections"] or {},
)

run_summary = projector(responses.RunSummarySchema, **_TIMES)
# A step of the cross-run query carries its run's pipeline and entity; no input or output.
step_summary = projector(responses.StepRowSchema, **_STEP)
artifact_view = projector(responses.ArtifactViewSchema, link=_link)
# A step of the run view: everything the hot tier holds, its artifacts (set on the row) included.
step_detail = projector(responses.StepDetailSchema, **_STEP)
# Labels arrive with their run as JSON, their time as seconds since the epoch.
label_view = projector(
    responses.LabelViewSchema, labeled_at=lambda r: iso_utc(datetime.fromtimestamp(float(r["labeled_at"]), UTC))
)
# The run view: the run with its steps, evidence counts and summary (set on the row).
run_view = projector(responses.RunViewSchema, **_TIMES)


def paginate(rows: list[Row], limit: int, key: Callable[[Row], tuple[Any, ...]]) -> tuple[list[Row], str | None]:
    """The page of `rows` (fetched one over `limit`), and the cursor to the next if there is one."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, cursors.encode(*key(page[-1]))


def check_window(since: datetime | None, until: datetime | None) -> None:
    """A 400 unless `since` is before `until`."""
    if since is not None and until is not None and since >= until:
        raise ValidationFailed({"since": ["must be earlier than until"]})

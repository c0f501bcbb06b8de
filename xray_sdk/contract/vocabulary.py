"""The words X-Ray is built from: step types, statuses, event types, capture levels, artifact
statuses and the reasons evidence is dropped.

The server imports these; nothing here is defined a second time anywhere else.
"""

from __future__ import annotations

from enum import Enum


class StepType(str, Enum):
    """The fixed vocabulary of business decisions a step can be (contract: no others in V1)."""

    LLM = "llm"
    SEARCH = "search"
    FILTER = "filter"
    RANK = "rank"
    SELECT = "select"
    CUSTOM = "custom"


class StepStatus(str, Enum):
    """Where a step stands: `running` until its `step_end` arrives."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


class RunStatus(str, Enum):
    """Where a run stands: `running` until its `run_finish` arrives."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


class EventType(str, Enum):
    """The events a client sends in a batch to `POST /api/v1/runs/<run_id>/events`."""

    STEP_START = "step_start"
    STEP_END = "step_end"
    RUN_FINISH = "run_finish"


class CaptureLevel(str, Enum):
    """How much evidence a step keeps: counts only, a bounded sample, or everything (capped)."""

    SUMMARY = "summary"
    SAMPLE = "sample"
    FULL = "full"


class ArtifactStatus(str, Enum):
    """Where an artifact's evidence is: in the store, on its way, not kept, or the client's own."""

    STORED = "stored"
    PENDING = "pending"
    DROPPED = "dropped"
    REFERENCED = "referenced"


class DropReason(str, Enum):
    """Why evidence was not kept. The step and its metrics are complete whatever the reason."""

    CAPTURE_POLICY = "capture_policy"
    LOAD_SHED = "load_shed"
    TOO_LARGE = "too_large"
    STORE_UNAVAILABLE = "store_unavailable"
    NO_STORE = "no_store"
    INVALID_KEY = "invalid_key"
    NOT_FOUND = "not_found"
    LOST = "lost"
    RETENTION = "retention"


STEP_TYPES: tuple[str, ...] = tuple(t.value for t in StepType)
STEP_STATUSES: tuple[str, ...] = tuple(s.value for s in StepStatus)
FINAL_STEP_STATUSES: tuple[str, ...] = (StepStatus.OK.value, StepStatus.ERROR.value)
RUN_STATUSES: tuple[str, ...] = tuple(s.value for s in RunStatus)
FINAL_RUN_STATUSES: tuple[str, ...] = (RunStatus.OK.value, RunStatus.ERROR.value)
EVENT_TYPES: tuple[str, ...] = tuple(e.value for e in EventType)
CAPTURE_LEVELS: tuple[str, ...] = tuple(c.value for c in CaptureLevel)
ARTIFACT_STATUSES: tuple[str, ...] = tuple(s.value for s in ArtifactStatus)
DROP_REASONS: tuple[str, ...] = tuple(r.value for r in DropReason)
# summary < sample < full: an artifact is kept only at or below the allowed level.
CAPTURE_RANK: dict[str, int] = {level: rank for rank, level in enumerate(CAPTURE_LEVELS)}

# The standard metrics are typed, indexed columns in the hot tier; every other metric is
# stored as-is in a JSON column. The Python type is what a value must be (bool excluded).
STANDARD_METRICS: dict[str, type] = {
    "candidates_in": int,
    "candidates_out": int,
    "drop_ratio": float,
    "model": str,
    "temperature": float,
}

# Rejection reasons past the most frequent `Limits.max_reasons` are counted under this one.
OTHER_REASON = "other"

# Steps that keep some of the candidates they were given: their output is at most their input,
# and `drop_ratio` = 1 - out / in. A search, llm or custom step may turn one input into many
# outputs (one query into 1,000 results, a title into 4 keywords): its counts stand as given,
# and it has no drop ratio.
REDUCING_STEP_TYPES: tuple[str, ...] = (StepType.FILTER.value, StepType.RANK.value, StepType.SELECT.value)

# Without these, cross-run queries over a step type silently miss steps, so a step that
# lacks them is stored but flagged as a contract violation (contract: "Metrics are mandatory").
REQUIRED_METRICS: dict[str, tuple[str, ...]] = {
    StepType.FILTER.value: ("candidates_in", "candidates_out", "drop_ratio"),
    StepType.RANK.value: ("candidates_in", "candidates_out"),
    StepType.LLM.value: ("model",),
}

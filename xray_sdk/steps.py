"""A step: what it records (metrics, why, input, output, artifacts) and the events it sends.

A short step sends one event, its `step_end`, which carries everything including when it
started; a step still running after the client's `start_delay` also sends a `step_start` (from
the delivery thread), so that it shows as running.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .context import current_step_var
from .contract.bounds import truncate_text
from .contract.metrics import evaluate_metrics
from .contract.vocabulary import (
    CAPTURE_LEVELS,
    CAPTURE_RANK,
    REQUIRED_METRICS,
    STEP_TYPES,
    CaptureLevel,
    DropReason,
    StepStatus,
    StepType,
)
from .decisions import Decisions
from .delivery.worker import EVENT
from .ids import new_id
from .serialize import RawJson, clean_text, dumps
from .values import bounded_summary, error_info, label, now_iso

if TYPE_CHECKING:
    from .run import Run

# Keep artifact payloads only while the queue is under this share of its bound, so that
# metrics, which are never dropped by choice, always have room.
_PAYLOAD_PRESSURE = 0.5


class Step:
    """One business decision of a run. A context manager (`with` and `async with`); its
    recording methods return the step, never raise in best_effort mode, and are thread-safe
    enough for a step's own threads (last write wins)."""

    # Slots: a step is allocated per decision, and fewer objects mean less garbage collection.
    __slots__ = (
        "run",
        "step_id",
        "seq",
        "name",
        "step_type",
        "_declared_type",
        "capture",
        "parent_step_id",
        "started_at",
        "_t0",
        "_start_sent",
        "_metrics",
        "_why",
        "_input",
        "_output",
        "_artifacts",
        "_closed",
        "_token",
        "_decisions",
        "_id_field",
    )

    def __init__(
        self,
        run: Run,
        name: str,
        step_type: str,
        input: Any = None,
        capture: str | None = None,
        id_field: str | None = None,
    ) -> None:
        recorder = run.recorder
        self.run = run
        self.step_id = new_id()
        self.seq = next(run._seq)
        self.name = label(name, recorder.limits.max_name_chars)
        self.step_type = step_type
        self.capture = capture if capture in CAPTURE_LEVELS else run.capture
        parent = current_step_var.get()
        self.parent_step_id = parent.step_id if parent is not None and parent.run is run else None
        self.started_at = now_iso()
        self._t0 = time.monotonic()
        self._start_sent = False
        self._metrics: dict[str, Any] = {}
        self._why: str | None = None
        self._input = input
        self._output: Any = None
        self._artifacts: list[dict[str, Any]] | None = None
        self._closed = False
        self._token: contextvars.Token[Step | None] | None = None
        self._decisions: Decisions | None = None
        self._id_field = id_field
        self._declared_type: str | None = None
        if step_type not in STEP_TYPES:
            self.step_type = StepType.CUSTOM.value
            # Sent with the step: the server records it as the violation `unknown_step_type:<given>`.
            self._declared_type = label(step_type, recorder.limits.max_declared_type_chars)
            recorder.contract_error(
                f"step {self.name!r}: step type {self._declared_type!r} is not one of {', '.join(STEP_TYPES)}; "
                "it is recorded as 'custom' with the violation unknown_step_type",
                once=f"step_type:{self._declared_type}",
            )
        if id_field is not None and type(id_field) is not str:
            self._id_field = None
            recorder.contract_error(f"step {self.name!r}: id_field {label(id_field, 64)!r} is not a string")

    # ------------------------------------------------------------------ recording

    def metrics(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> Step:
        """Record metrics (merged with earlier ones)."""
        try:
            if values:
                self._metrics.update(values)
            if more:
                self._metrics.update(more)
        except Exception as exc:
            self.run.recorder.internal_error(exc)
        return self

    def candidates(self, before: Any, after: Any) -> Step:
        """Record `candidates_in` / `candidates_out` from counts or collections; `drop_ratio`
        is derived from them."""
        self._metrics["candidates_in"] = _count(before)
        self._metrics["candidates_out"] = _count(after)
        self._metrics.pop("drop_ratio", None)
        return self

    def keep(self, candidate: Any, id: Any = None) -> Step:
        """Record that `candidate` passed this step. `id`: the candidate's id in the evidence
        (else the step's `id_field` of the candidate, if any)."""
        # Called per candidate: the record is read inline, not through `_record()`.
        (self._decisions or self._record()).keep(candidate, id)
        return self

    def reject(self, candidate: Any, reason: str, id: Any = None) -> Step:
        """Record that `candidate` was dropped, and why (a short, stable reason code such as
        `category_mismatch`: reasons are counted and compared across runs). `id` as for `keep`."""
        (self._decisions or self._record()).reject(candidate, reason, id)
        return self

    def decide(self, kept: Any, rejected: Any) -> Step:
        """Record many decisions at once: `kept` candidates, and `rejected` (candidate, reason)
        pairs, identified by the step's `id_field`. `candidates_in`, `candidates_out` and
        `drop_ratio` follow from them."""
        try:
            self._record().extend(kept, rejected)
        except Exception as exc:
            self.run.recorder.internal_error(exc)
        return self

    def _record(self) -> Decisions:
        if self._decisions is None:
            self._decisions = Decisions(
                self.run.recorder.limits, keep_all=self.capture == CaptureLevel.FULL.value, id_field=self._id_field
            )
        return self._decisions

    def model(self, name: str, temperature: float | None = None) -> Step:
        """Record the LLM's `model` and `temperature`."""
        self._metrics["model"] = name
        if temperature is not None:
            self._metrics["temperature"] = temperature
        return self

    def why(self, text: Any) -> Step:
        """Say in a sentence why the step behaved as it did."""
        self._why = text if isinstance(text, str) else label(text, 10**9)
        return self

    def input(self, value: Any) -> Step:
        """A summary of what the step was given."""
        self._input = value
        return self

    def output(self, value: Any) -> Step:
        """A summary of what the step produced."""
        self._output = value
        return self

    def artifact(
        self,
        name: str,
        payload: Any,
        *,
        capture: str = CaptureLevel.SAMPLE.value,
        content_type: str = "application/json",
    ) -> Step:
        """Attach bulky evidence. Kept only if `capture` is within the step's capture level,
        the payload within the size limit, and the queue not under pressure; otherwise the
        step records that it was dropped and why."""
        if self._artifacts is None:
            self._artifacts = []
        self._artifacts.append({"name": name, "capture": capture, "content_type": content_type, "payload": payload})
        return self

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> Step:
        self._token = current_step_var.set(self)
        recorder = self.run.recorder
        if not recorder.disabled:
            recorder.open_step(self.step_id, self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            try:
                current_step_var.reset(self._token)
            except ValueError:
                pass  # left in another context than entered: nothing to restore
        self._close(exc)

    async def __aenter__(self) -> Step:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ events

    def _close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        recorder = self.run.recorder
        recorder.close_step(self.step_id, None)
        if recorder.disabled:
            return
        problems: list[str] = []
        try:
            event = self._end_event(exc, problems)
            recorder.submit(self.run.run_id, EVENT, event, raw="artifacts" in event)
        except Exception as error:
            recorder.internal_error(error)
        if problems:
            # When the pipeline's own exception is on its way, it wins: the mistake is only counted.
            recorder.contract_error(
                f"step {self.name!r} ({self.step_type}): " + "; ".join(problems), raising=exc is None
            )

    def start_event_if_due(self, threshold: float) -> dict[str, Any] | None:
        """The step_start event, once, if the step is still open and began before `threshold`
        (a `time.monotonic()` value); else None. The delivery thread asks."""
        if self._start_sent or self._closed or self._t0 > threshold:
            return None
        self._start_sent = True
        return self._start_event()

    def _start_event(self) -> dict[str, Any]:
        event = self._identity("step_start", self.started_at)
        if self._input is not None:
            event["input"] = self._bounded(self._input)
        return event

    def _end_event(self, exc: BaseException | None, problems: list[str]) -> dict[str, Any]:
        limits = self.run.recorder.limits
        event = self._identity("step_end", now_iso())
        event["status"] = StepStatus.ERROR.value if exc is not None else StepStatus.OK.value
        event["started_at"] = self.started_at
        if self._decisions is not None:
            self._apply_decisions(event)
        if self._metrics or self.step_type in REQUIRED_METRICS:
            verdict = evaluate_metrics(self.step_type, self._metrics, limits)
            problems += [f"metric {name} {problem}" for name, problem in verdict.errors.items()]
            problems += verdict.violations
            event["metrics"] = verdict.metrics  # unusable values left out, so the step still lands
        if self._why is not None:
            event["why"] = truncate_text(clean_text(self._why), limits.max_why_chars)[0]
        if self._input is not None:
            event["input"] = self._bounded(self._input)
        if self._output is not None:
            event["output"] = self._bounded(self._output)
        if exc is not None:
            event["error"] = error_info(exc, limits)
        if self._artifacts:
            event["artifacts"] = self._artifact_refs()
        return event

    def _apply_decisions(self, event: dict[str, Any]) -> None:
        """Counts become metrics (exact, over every candidate); samples become artifacts."""
        d = self._decisions
        if d is None:
            return
        self._metrics.setdefault("candidates_in", d.kept + d.rejected)
        self._metrics.setdefault("candidates_out", d.kept)
        if d.counts:
            event["rejections"] = d.reason_counts()
        # Below `sample` (the default `summary`), a sample whose every candidate has an id is kept
        # as those ids alone: short strings, bounded per reason, enough for `why-dropped` to answer.
        # Otherwise the sample is declared at `sample`, and a lower level records it as not kept.
        ids_only = CAPTURE_RANK[self.capture] < CAPTURE_RANK[CaptureLevel.SAMPLE.value]
        if d.kept_sample:
            kept_ids = d.kept_ids() if ids_only else None
            self._evidence("kept_sample", kept_ids, d.kept_evidence)
        if d.samples:
            rejected_ids = d.rejected_ids() if ids_only else None
            self._evidence("rejected_sample", rejected_ids, d.rejected_sample)
        if d.rejected_all:
            self.artifact("rejected_all", d.rejected_all_evidence(), capture=CaptureLevel.FULL.value)

    def _evidence(self, name: str, ids: list[dict[str, str]] | None, sample: Callable[[], list[Any]]) -> None:
        if ids is not None:
            self.artifact(name, ids, capture=CaptureLevel.SUMMARY.value)
        else:
            self.artifact(name, sample(), capture=CaptureLevel.SAMPLE.value)

    def _identity(self, event_type: str, ts: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": new_id(),
            "type": event_type,
            "ts": ts,
            "step_id": self.step_id,
            "seq": self.seq,
            "name": self.name,
            "step_type": self.step_type,
        }
        if self.parent_step_id:
            event["parent_step_id"] = self.parent_step_id
        if self._declared_type is not None:
            event["declared_type"] = self._declared_type
        return event

    def _bounded(self, value: Any) -> Any:
        return bounded_summary(value, self.run.recorder.limits.max_summary_bytes)

    def _artifact_refs(self) -> list[dict[str, Any]]:
        recorder = self.run.recorder
        limits = recorder.limits
        refs: list[dict[str, Any]] = []
        seen: set[str] = set()
        shed = recorder.pressure() >= _PAYLOAD_PRESSURE
        # One event must fit the server's body limit with room to spare, whatever it carries.
        budget = limits.max_body_bytes // 2
        for artifact in (self._artifacts or [])[: limits.max_artifacts_per_step]:
            name = label(artifact["name"], limits.max_name_chars)
            if name in seen:
                continue
            seen.add(name)
            capture = artifact["capture"] if artifact["capture"] in CAPTURE_LEVELS else CaptureLevel.FULL.value
            ref: dict[str, Any] = {
                "name": name,
                "capture": capture,
                "content_type": label(artifact["content_type"], limits.max_name_chars),
            }
            # Decide before encoding: a payload that will not be sent is never serialised.
            if CAPTURE_RANK[capture] > CAPTURE_RANK[self.capture]:
                ref["dropped"] = DropReason.CAPTURE_POLICY.value
            elif shed:
                ref["dropped"] = DropReason.LOAD_SHED.value
            else:
                data = dumps(artifact["payload"])
                if len(data) > min(limits.max_artifact_payload_bytes, budget):
                    ref["dropped"] = DropReason.TOO_LARGE.value
                else:
                    ref["payload"] = RawJson(data)
                    budget -= len(data)
            if "dropped" in ref:
                recorder.artifact_dropped(ref["dropped"])
            else:
                recorder.artifact_kept()
            refs.append(ref)
        return refs


def _count(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return len(value)
    except Exception:
        return value  # left for the contract check to report

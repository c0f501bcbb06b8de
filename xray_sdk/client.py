"""The developer-facing API: `Client`, `Run`, `Step`, and the `step` decorator.

Nothing here waits on the network: events are encoded on the caller's thread (so later
changes to the caller's objects do not leak in) and handed to `Delivery`, which never blocks.
In `best_effort` mode nothing raises into the pipeline; in `strict` mode instrumentation
mistakes raise `XRayContractError` at the step.
"""
from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import itertools
import os
import time
import traceback
import weakref
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from .capture import truncate_text
from .contract import evaluate_metrics
from .delivery import EVENT, RUN, Delivery, DeliveryConfig, Item
from .errors import XRayContractError, XRayDeliveryError
from .ids import new_id
from .limits import DEFAULT_LIMITS, Limits
from .ratelog import RateLimitedLog
from .serialize import RawJson, clean_text, dumps, encode, to_json_safe
from .transport import HttpTransport
from .vocabulary import CAPTURE_LEVELS, STEP_TYPES, CaptureLevel, RunStatus, StepStatus, StepType

T = TypeVar("T")

BEST_EFFORT = "best_effort"
STRICT = "strict"
DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
_CAPTURE_ORDER = {level: rank for rank, level in enumerate(CAPTURE_LEVELS)}
# Keep artifact payloads only while the queue is under this share of its bound, so that
# metrics, which are never dropped by choice, always have room.
_PAYLOAD_PRESSURE = 0.5

_current_run: contextvars.ContextVar["Run | None"] = contextvars.ContextVar("xray_run", default=None)
_current_step: contextvars.ContextVar["Step | None"] = contextvars.ContextVar("xray_step", default=None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Client:
    """Sends runs and steps to an X-Ray server in the background.

    Configured by arguments, else by `XRAY_ENDPOINT`, `XRAY_MODE` (`best_effort` or `strict`),
    `XRAY_CAPTURE` (`summary`, `sample`, `full`) and `XRAY_DISABLED`. A bad setting never
    raises: it is logged and the safe default is used.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        mode: str | None = None,
        capture: str | None = None,
        disabled: bool | None = None,
        timeout: float = 3.0,
        shutdown_timeout: float = 2.0,
        start_delay: float = 1.0,
        delivery: DeliveryConfig | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.log = RateLimitedLog()
        self.limits = limits
        self.mode = self._choose(mode or os.environ.get("XRAY_MODE"), (BEST_EFFORT, STRICT), BEST_EFFORT, "XRAY_MODE")
        self.capture = self._choose(capture or os.environ.get("XRAY_CAPTURE"), CAPTURE_LEVELS,
                                    CaptureLevel.SUMMARY.value, "XRAY_CAPTURE")
        self.disabled = _env_flag("XRAY_DISABLED") if disabled is None else disabled
        self.endpoint = endpoint or os.environ.get("XRAY_ENDPOINT") or DEFAULT_ENDPOINT
        self.shutdown_timeout = shutdown_timeout
        # A step that ends within `start_delay` seconds costs one event (its step_end carries
        # everything); only longer steps also send a step_start, so they show as running.
        self.start_delay = start_delay
        self._open_steps: dict[str, Step] = {}
        self._contract_errors = 0
        self._internal_errors = 0
        self._artifacts_kept = 0
        self._artifacts_dropped: dict[str, int] = {}
        self._reported_lost = 0
        try:
            transport = HttpTransport(self.endpoint, timeout=timeout)
        except ValueError as exc:
            self.log.warning("endpoint", "X-Ray disabled: %s", exc)
            self.disabled = True
            transport = HttpTransport(DEFAULT_ENDPOINT, timeout=timeout)
        self._delivery = Delivery(transport, delivery, on_tick=self._send_overdue_starts)
        ref = weakref.ref(self)
        atexit.register(lambda: (client := ref()) is not None and client._close_at_exit())

    def _choose(self, value: str | None, allowed: tuple[str, ...], default: str, name: str) -> str:
        if value is None or value in allowed:
            return value or default
        self.log.warning(name, "%s=%r is not one of %s; using %s", name, value, ", ".join(allowed), default)
        return default

    @property
    def strict(self) -> bool:
        """True in strict mode: contract mistakes raise, and flush() raises on loss."""
        return self.mode == STRICT

    def start_run(self, pipeline: str, entity: str, *, tags: Mapping[str, str] | None = None,
                  metadata: Any = None, run_id: str | None = None, capture: str | None = None) -> "Run":
        """Begin a run; returns at once (the id is made here, the create request is queued)."""
        run = Run(self, str(run_id or new_id()), pipeline, entity, capture or self.capture)
        try:
            body: dict[str, Any] = {"run_id": run.run_id, "pipeline": _label(pipeline, self.limits),
                                    "entity": _label(entity, self.limits), "started_at": _now()}
            if tags:
                limits = self.limits
                body["tags"] = {_label(k, limits)[: limits.max_tag_key_chars]: _label(v, limits)[: limits.max_tag_value_chars]
                                for k, v in list(dict(tags).items())[: limits.max_tags]}
            if metadata is not None:
                body["metadata"] = self._bounded_metadata(metadata)
            self._submit(run.run_id, RUN, body, raw=metadata is not None)
        except Exception as exc:
            self._internal_error(exc)
        return run

    def _bounded_metadata(self, metadata: Any) -> Any:
        data = dumps(metadata)
        if len(data) <= self.limits.max_metadata_bytes:
            return RawJson(data)
        return {"_truncated": True, "_original_bytes": len(data)}

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to `timeout` seconds for queued events to be delivered. In strict mode,
        raise `XRayDeliveryError` if any were lost since the last flush or are still pending."""
        done = self._delivery.flush(timeout)
        if self.strict:
            stats = self._delivery.stats()
            lost = stats["dropped_total"] - self._reported_lost
            self._reported_lost = stats["dropped_total"]
            if lost or not done:
                raise XRayDeliveryError(
                    f"{lost} events lost since the last flush (by reason: {stats['dropped']}), "
                    f"{stats['pending']} still pending after {timeout}s; is {self.endpoint} reachable?")
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued within `timeout` (default `shutdown_timeout`), then stop."""
        return self._delivery.close(self.shutdown_timeout if timeout is None else timeout)

    def stats(self) -> dict[str, Any]:
        """Delivery counters (`enqueued == sent + dropped_total + pending`) and SDK counters."""
        stats = self._delivery.stats()
        stats.update(contract_errors=self._contract_errors, internal_errors=self._internal_errors,
                     artifacts={"kept": self._artifacts_kept, "dropped": dict(self._artifacts_dropped)})
        return stats

    # ------------------------------------------------------------------ internals

    def _close_at_exit(self) -> None:
        try:
            self._delivery.close(self.shutdown_timeout)
        except Exception:
            pass

    def _submit(self, run_id: str, kind: str, body: dict[str, Any], raw: bool = False) -> None:
        """Encode `body` now (later changes to the caller's objects must not leak in) and queue
        it. `raw`: the body holds `RawJson` fragments to splice in."""
        if self.disabled:
            return
        try:
            self._delivery.submit(Item(run_id, kind, encode(body) if raw else dumps(body)))
        except Exception as exc:
            self._internal_error(exc)

    def _send_overdue_starts(self) -> None:
        """Called by the delivery thread: send step_start for steps running past start_delay."""
        threshold = time.monotonic() - self.start_delay
        for step in list(self._open_steps.values()):
            if not step._start_sent and step._t0 <= threshold:
                step._start_sent = True
                self._submit(step.run.run_id, EVENT, step._start_event())

    def _internal_error(self, exc: BaseException) -> None:
        self._internal_errors += 1
        self.log.warning("internal", "X-Ray SDK error (the pipeline is unaffected): %s", type(exc).__name__)

    def _contract_error(self, message: str) -> None:
        self._contract_errors += 1
        if self.strict:
            raise XRayContractError(message)
        self.log.warning("contract", "X-Ray instrumentation problem: %s", message)

    def _artifact_dropped(self, reason: str) -> None:
        self._artifacts_dropped[reason] = self._artifacts_dropped.get(reason, 0) + 1


def _guarded(method: Callable[..., "Step"]) -> Callable[..., "Step"]:
    """A recording method that never raises into the pipeline: a failure is counted."""
    @functools.wraps(method)
    def wrapper(self: "Step", *args: Any, **kwargs: Any) -> "Step":
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.run.client._internal_error(exc)
            return self
    return wrapper


class Run:
    """One execution of a pipeline on one entity. A context manager: leaving the block
    finishes the run, recording the exception if one escaped."""

    def __init__(self, client: Client, run_id: str, pipeline: str, entity: str, capture: str) -> None:
        self.client = client
        self.run_id = run_id
        self.pipeline = pipeline
        self.entity = entity
        self.capture = capture
        self.finished = False
        self._seq = itertools.count()
        self._tokens: list[contextvars.Token] = []

    def step(self, name: str, step_type: str, fn: Callable[..., T] | None = None, /,
             *args: Any, **kwargs: Any) -> Any:
        """With `fn`: call `fn(step, *args, **kwargs)` inside a step and return its result (a
        coroutine if `fn` is async). Without: a context manager (`with` or `async with`) that
        yields the step; then `input=` and `capture=` may be given as keywords."""
        if fn is None:
            return StepScope(self, name, step_type, kwargs.get("input"), kwargs.get("capture"))
        scope = StepScope(self, name, step_type, None, None)
        if asyncio.iscoroutinefunction(fn):
            async def run_async() -> Any:
                async with scope as step:
                    return await fn(step, *args, **kwargs)
            return run_async()
        with scope as step:
            return fn(step, *args, **kwargs)

    def finish(self, outcome: Any = None, *, status: str | None = None, error: BaseException | Any = None) -> None:
        """End the run with an outcome, or with an error; only the first call counts."""
        if self.finished:
            return
        self.finished = True
        try:
            if status not in (None, RunStatus.OK.value, RunStatus.ERROR.value):
                self.client._contract_error(f"run status {status!r} is not 'ok' or 'error'")
                status = None
            status = status or (RunStatus.ERROR.value if error is not None else RunStatus.OK.value)
            body: dict[str, Any] = {"event_id": new_id(), "type": "run_finish", "ts": _now(),
                                    "status": status}
            if outcome is not None:
                body["outcome"] = outcome
            if error is not None:
                body["error"] = _error_info(error, self.client.limits)
            self.client._submit(self.run_id, EVENT, body)
        except XRayContractError:
            raise
        except Exception as exc:
            self.client._internal_error(exc)

    def __enter__(self) -> "Run":
        self._tokens.append(_current_run.set(self))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._tokens:
            try:
                _current_run.reset(self._tokens.pop())
            except ValueError:
                pass  # left in another context than entered: nothing to restore
        if exc is not None:
            self.finish(status=RunStatus.ERROR.value, error=exc)
        else:
            self.finish()

    async def __aenter__(self) -> "Run":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class StepScope:
    """A step in progress, as a context manager (`with` and `async with`)."""

    def __init__(self, run: Run, name: str, step_type: str, input: Any, capture: str | None) -> None:
        self.run = run
        self.name = name
        self.step_type = step_type
        self.input = input
        self.capture = capture
        self._step: Step | None = None
        self._token: contextvars.Token | None = None

    def __enter__(self) -> "Step":
        step = Step(self.run, self.name, self.step_type, self.input, self.capture)
        self._step = step
        self._token = _current_step.set(step)
        return step

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            try:
                _current_step.reset(self._token)
            except ValueError:
                pass
        if self._step is not None:
            self._step._close(exc)

    async def __aenter__(self) -> "Step":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class Step:
    """What a step records: metrics, why, input, output, artifacts. Every method returns the
    step, never raises in best_effort mode, and may be called from any thread."""

    def __init__(self, run: Run, name: str, step_type: str, input: Any = None, capture: str | None = None) -> None:
        client = run.client
        self.run = run
        self.step_id = new_id()
        self.seq = next(run._seq)
        self.name = _label(name, client.limits) if isinstance(name, str) and name else "unnamed"
        self.step_type = step_type
        self.capture = capture if capture in CAPTURE_LEVELS else run.capture
        parent = _current_step.get()
        self.parent_step_id = parent.step_id if parent is not None and parent.run is run else None
        self.started_at = _now()
        self._t0 = time.monotonic()
        self._start_sent = False
        self._metrics: dict[str, Any] = {}
        self._why: str | None = None
        self._input = input
        self._output: Any = None
        self._artifacts: list[dict[str, Any]] = []
        self._closed = False
        if step_type not in STEP_TYPES:
            self.step_type = StepType.CUSTOM.value
            client._contract_error(
                f"step {self.name!r}: step type {_label(step_type, client.limits)!r} is not one of {', '.join(STEP_TYPES)}")
        if not client.disabled:
            client._open_steps[self.step_id] = self

    # ------------------------------------------------------------------ recording

    @_guarded
    def metrics(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> "Step":
        """Record metrics (merged with earlier ones)."""
        if values:
            self._metrics.update(values)
        self._metrics.update(more)
        return self

    @_guarded
    def candidates(self, before: Any, after: Any) -> "Step":
        """Record `candidates_in` / `candidates_out` from counts or collections; `drop_ratio`
        is derived from them."""
        self._metrics["candidates_in"] = _count(before)
        self._metrics["candidates_out"] = _count(after)
        self._metrics.pop("drop_ratio", None)
        return self

    @_guarded
    def model(self, name: str, temperature: float | None = None) -> "Step":
        """Record the LLM's `model` and `temperature`."""
        self._metrics["model"] = name
        if temperature is not None:
            self._metrics["temperature"] = temperature
        return self

    @_guarded
    def why(self, text: Any) -> "Step":
        """Say in a sentence why the step behaved as it did."""
        self._why = text if isinstance(text, str) else _label(text, Limits(max_name_chars=10**9))
        return self

    @_guarded
    def input(self, value: Any) -> "Step":
        """A summary of what the step was given (if not given when the step started)."""
        self._input = value
        return self

    @_guarded
    def output(self, value: Any) -> "Step":
        """A summary of what the step produced."""
        self._output = value
        return self

    @_guarded
    def artifact(self, name: str, payload: Any, *, capture: str = CaptureLevel.SAMPLE.value,
                 content_type: str = "application/json") -> "Step":
        """Attach bulky evidence. Kept only if `capture` is within the step's capture level,
        the payload within the size limit, and the queue not under pressure; otherwise the
        step records that it was dropped and why."""
        self._artifacts.append({"name": str(name), "capture": capture, "content_type": content_type,
                                "payload": payload})
        return self

    # ------------------------------------------------------------------ ending

    def _close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        client = self.run.client
        client._open_steps.pop(self.step_id, None)
        problems: list[str] = []
        try:
            event = self._end_event(exc, problems)
            client._submit(self.run.run_id, EVENT, event, raw="artifacts" in event)
        except Exception as error:
            client._internal_error(error)
        if problems and exc is None:
            client._contract_error(f"step {self.name!r} ({self.step_type}): " + "; ".join(problems))
        elif problems:
            client._contract_errors += 1  # the pipeline's own exception wins

    def _end_event(self, exc: BaseException | None, problems: list[str]) -> dict[str, Any]:
        limits = self.run.client.limits
        ended = _now()
        event = self._identity("step_end", ended)
        event["status"] = StepStatus.ERROR.value if exc is not None else StepStatus.OK.value
        event["started_at"] = self.started_at
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
            event["error"] = _error_info(exc, limits)
        if self._artifacts:
            event["artifacts"] = self._artifact_refs()
        return event

    def _start_event(self) -> dict[str, Any]:
        event = self._identity("step_start", self.started_at)
        if self._input is not None:
            event["input"] = self._bounded(self._input)
        return event

    def _identity(self, event_type: str, ts: str) -> dict[str, Any]:
        event = {"event_id": new_id(), "type": event_type, "ts": ts, "step_id": self.step_id,
                 "seq": self.seq, "name": self.name, "step_type": self.step_type}
        if self.parent_step_id:
            event["parent_step_id"] = self.parent_step_id
        return event

    def _bounded(self, value: Any) -> Any:
        """`value` if its JSON fits the summary limit, else a marked preview (as the server would)."""
        limit = self.run.client.limits.max_summary_bytes
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        if isinstance(value, str) and len(value) * 4 <= limit:
            return value
        data = dumps(value)
        if len(data) <= limit:
            return value  # small: encoding it twice costs less than splicing fragments
        preview = data[: limit // 4].decode("utf-8", errors="ignore")
        return {"_truncated": True, "_original_bytes": len(data), "preview": preview + "…"}

    def _artifact_refs(self) -> list[dict[str, Any]]:
        client = self.run.client
        limits = client.limits
        refs, seen = [], set()
        shed = client._delivery.pressure() >= _PAYLOAD_PRESSURE
        for artifact in self._artifacts[: limits.max_artifacts_per_step]:
            name = _label(artifact["name"], limits)
            if name in seen:
                continue
            seen.add(name)
            capture = artifact["capture"] if artifact["capture"] in CAPTURE_LEVELS else CaptureLevel.FULL.value
            ref = {"name": name, "capture": capture, "content_type": str(artifact["content_type"])[:200]}
            data = None if shed else dumps(artifact["payload"])
            if _CAPTURE_ORDER[capture] > _CAPTURE_ORDER[self.capture]:
                ref["dropped"] = "capture_policy"
            elif data is None:
                ref["dropped"] = "load_shed"
            elif len(data) > limits.max_artifact_payload_bytes:
                ref["dropped"] = "too_large"
            else:
                ref["payload"] = RawJson(data)
            if "dropped" in ref:
                client._artifact_dropped(ref["dropped"])
            else:
                client._artifacts_kept += 1
            refs.append(ref)
        return refs


def _label(value: Any, limits: Limits) -> str:
    """A short printable name for anything, never raising."""
    if not isinstance(value, str):
        safe = to_json_safe(value)
        value = safe if isinstance(safe, str) else dumps(safe).decode("utf-8")
    return clean_text(value)[: limits.max_name_chars] or "unnamed"




def _count(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return len(value)
    except TypeError:
        return value  # left for the contract check to report


def _error_info(error: BaseException | Any, limits: Limits) -> dict[str, Any]:
    if not isinstance(error, BaseException):
        return {"type": "Error", "message": truncate_text(clean_text(str(error)), limits.max_error_message_chars)[0]}
    try:
        message = str(error)
    except Exception:
        message = f"<unprintable {type(error).__name__}>"
    try:
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        stack = ""
    return {
        "type": type(error).__qualname__[:200],
        "message": truncate_text(clean_text(message), limits.max_error_message_chars)[0],
        "stack": truncate_text(clean_text(stack), limits.max_error_stack_chars)[0] if stack else None,
    }


# ---------------------------------------------------------------------- context helpers

def current_run() -> Run | None:
    """The run of the innermost `with run:` block in this context, if any."""
    return _current_run.get()


def current_step() -> "Step | None":
    """The innermost step in progress in this context, if any."""
    return _current_step.get()


def step(name: str | None = None, step_type: str = StepType.CUSTOM.value, *,
         capture: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a function so that each call is a step of the current run (found through
    contextvars; outside a run the function simply runs). Use `current_step()` inside."""
    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        step_name = name or fn.__name__
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                run = _current_run.get()
                if run is None:
                    return await fn(*args, **kwargs)
                async with StepScope(run, step_name, step_type, None, capture):
                    return await fn(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _current_run.get()
            if run is None:
                return fn(*args, **kwargs)
            with StepScope(run, step_name, step_type, None, capture):
                return fn(*args, **kwargs)
        return wrapper
    return decorate

"""`Client`: configuration, the delivery it owns, and the counters a pipeline can read.

Nothing here waits on the network: events are encoded on the caller's thread (so later
changes to the caller's objects do not leak in) and handed to `Delivery`, which never blocks.
In `best_effort` mode nothing raises into the pipeline; in `strict` mode instrumentation
mistakes raise `XRayContractError` at the step.
"""

from __future__ import annotations

import math
import os
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .contract.limits import DEFAULT_LIMITS, Limits
from .contract.vocabulary import CAPTURE_LEVELS, CaptureLevel
from .delivery.transport import HttpTransport
from .delivery.worker import LABEL, RUN, Delivery, DeliveryConfig
from .errors import XRayContractError, XRayDeliveryError
from .ids import new_run_id
from .ratelog import RateLimitedLog
from .recorder import Recorder
from .run import Run
from .serialize import RawJson, dumps
from .values import label as bounded
from .values import now_iso

_clients: weakref.WeakSet[Client] = weakref.WeakSet()

BEST_EFFORT = "best_effort"
STRICT = "strict"
DEFAULT_ENDPOINT = "http://127.0.0.1:8000"


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
        mode = self._choose(mode or os.environ.get("XRAY_MODE"), (BEST_EFFORT, STRICT), BEST_EFFORT, "XRAY_MODE")
        self.mode = mode
        self.capture = self._choose(
            capture or os.environ.get("XRAY_CAPTURE"), CAPTURE_LEVELS, CaptureLevel.SUMMARY.value, "XRAY_CAPTURE"
        )
        off = _env_flag("XRAY_DISABLED") if disabled is None else disabled
        self.endpoint = endpoint or os.environ.get("XRAY_ENDPOINT") or DEFAULT_ENDPOINT
        self.shutdown_timeout = shutdown_timeout
        # A step that ends within `start_delay` seconds costs one event (its step_end carries
        # everything); only longer steps also send a step_start, so they show as running.
        self.start_delay = start_delay
        self._reported_lost = 0
        gzip_min_bytes = delivery.gzip_min_bytes if delivery is not None else None
        try:
            transport = HttpTransport(self.endpoint, timeout=timeout, gzip_min_bytes=gzip_min_bytes)
        except ValueError as exc:
            self.log.warning("endpoint", "X-Ray disabled: %s", exc)
            off = True
            transport = HttpTransport(DEFAULT_ENDPOINT, timeout=timeout)
        # The delivery thread must not keep the client alive: it reaches it through a weak reference.
        tick = weakref.WeakMethod(self._send_overdue_starts)
        self._delivery = Delivery(transport, delivery, on_tick=lambda: _call_if_alive(tick))
        # At exit, delivery.py closes every delivery of the process against one shared deadline.
        self._delivery.shutdown_timeout = shutdown_timeout
        self.recorder = Recorder(
            deliver=self._delivery.submit,
            pressure=self._delivery.pressure,
            limits=limits,
            strict=mode == STRICT,
            disabled=off,
            log=self.log,
        )
        _clients.add(self)

    def _choose(self, value: str | None, allowed: tuple[str, ...], default: str, name: str) -> str:
        if value is None or value in allowed:
            return value or default
        self.log.warning(name, "%s=%r is not one of %s; using %s", name, value, ", ".join(allowed), default)
        return default

    @property
    def limits(self) -> Limits:
        """The bounds applied to everything this client sends."""
        return self.recorder.limits

    @property
    def disabled(self) -> bool:
        """True when nothing is sent (`XRAY_DISABLED`, or an endpoint that is not a URL)."""
        return self.recorder.disabled

    @disabled.setter
    def disabled(self, value: bool) -> None:
        self.recorder.disabled = value

    @property
    def strict(self) -> bool:
        """True in strict mode: contract mistakes raise, and flush() raises on loss."""
        return self.mode == STRICT

    def start_run(
        self,
        pipeline: str,
        entity: str,
        *,
        tags: Mapping[str, str] | None = None,
        metadata: Any = None,
        run_id: str | None = None,
        capture: str | None = None,
    ) -> Run:
        """Begin a run; returns at once (the id is made here, the create request is queued)."""
        if capture is not None and capture not in CAPTURE_LEVELS:
            self.recorder.contract_error(f"capture {capture!r} is not one of {', '.join(CAPTURE_LEVELS)}")
            capture = None
        run = Run(self, self.recorder, self._run_id(run_id), pipeline, entity, capture or self.capture)
        try:
            limits = self.limits
            body: dict[str, Any] = {
                "run_id": run.run_id,
                "pipeline": bounded(pipeline, limits.max_name_chars),
                "entity": bounded(entity, limits.max_name_chars),
                "started_at": now_iso(),
            }
            if tags:
                body["tags"] = {
                    bounded(k, limits.max_tag_key_chars): bounded(v, limits.max_tag_value_chars)
                    for k, v in list(dict(tags).items())[: limits.max_tags]
                }
            if metadata is not None:
                body["metadata"] = self._bounded_metadata(metadata)
            self.recorder.submit(run.run_id, RUN, body, raw=metadata is not None)
        except Exception as exc:
            self.recorder.internal_error(exc)
        return run

    def label(
        self, run_id: str, label: str, *, source: str = "", comment: str | None = None, value: float | None = None
    ) -> None:
        """Record a judgement of a run that arrived after it (`bad`, `good`, ...), with a number if
        it is one (`value`: a 1-5 review, a judge's 0.3): queued and delivered like events, never
        blocking; the latest judgement of each `source` wins."""
        try:
            limits = self.limits
            body: dict[str, Any] = {
                "label": bounded(label, limits.max_reason_chars),
                # No source is the empty one (as the API's default), not a name made up for it.
                "source": bounded(source, limits.max_name_chars) if source else "",
                "at": now_iso(),
            }
            if comment is not None:
                body["comment"] = bounded(comment, limits.max_why_chars)
            if value is not None:
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    body["value"] = float(value)
                else:
                    self.recorder.contract_error(f"label value {bounded(value, 64)!r} is not a finite number")
            run = self._run_id(run_id)
            self.recorder.submit(run, LABEL, body)
        except XRayContractError:
            raise
        except Exception as exc:
            self.recorder.internal_error(exc)

    def _run_id(self, run_id: Any) -> str:
        """The id to send: a UUID, as the server requires. Any other id is a contract error, and
        is mapped to a UUID derived from it, so the same id always gives the same run."""
        if run_id is None:
            return new_run_id()
        try:
            return str(uuid.UUID(str(run_id)))
        except ValueError:
            self.recorder.contract_error(f"run_id {bounded(run_id, 64)!r} is not a UUID")
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xray-run:{bounded(run_id, 10**6)}"))

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
                    f"{stats['pending']} still pending after {timeout}s; is {self.endpoint} reachable?"
                )
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued within `timeout` (default `shutdown_timeout`), then stop."""
        return self._delivery.close(self.shutdown_timeout if timeout is None else timeout)

    def stats(self) -> dict[str, Any]:
        """Delivery counters (`enqueued == sent + dropped_total + pending`) and SDK counters."""
        stats = self._delivery.stats()
        recorder = self.recorder
        stats.update(
            contract_errors=recorder.contract_errors,
            internal_errors=recorder.internal_errors,
            artifacts={"kept": recorder.artifacts_kept, "dropped": dict(recorder.artifacts_dropped)},
        )
        return stats

    def _send_overdue_starts(self) -> None:
        """Called by the delivery thread: send step_start for steps running past start_delay."""
        self.recorder.send_overdue_starts(time.monotonic() - self.start_delay)


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


def _forget_open_steps_in_child() -> None:
    # A forked child must not send step_start events for steps its parent has open.
    for client in list(_clients):
        client.recorder.forget_open_steps()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_open_steps_in_child)

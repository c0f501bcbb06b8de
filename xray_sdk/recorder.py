"""`Recorder`: everything a run and its steps may ask of their client, and nothing more.

The client builds one and hands it to each run; steps reach it through their run. It is given
callables, not the delivery (after sentry-python's worker), so a run or a step cannot reach
the queue, the transport or the client's settings, and the counters live in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .contract.limits import Limits
from .delivery.worker import EVENT, Item
from .errors import XRayContractError, XRayContractWarning
from .ratelog import RateLimitedLog
from .serialize import dumps, encode

if TYPE_CHECKING:
    from .steps import Step


# The `once` keys already warned in this process (every client shares them: one warning a mistake).
_warned: set[str] = set()


class Recorder:
    """Submits events, counts what went wrong, and tracks the steps still open.

    `open_step(step_id, step)` and `close_step(step_id, None)` are the open-step table's own
    `__setitem__` and `pop`, bound once: they run on every step, and a bound C method costs
    less than a Python call (the `None` is `pop`'s default: the step may not be in the table).
    """

    __slots__ = (
        "limits",
        "disabled",
        "strict",
        "log",
        "contract_errors",
        "internal_errors",
        "artifacts_kept",
        "artifacts_dropped",
        "open_step",
        "close_step",
        "pressure",
        "_deliver",
        "_open",
    )

    def __init__(
        self,
        *,
        deliver: Callable[[Item], bool],
        pressure: Callable[[], float],
        limits: Limits,
        strict: bool,
        disabled: bool,
        log: RateLimitedLog,
    ) -> None:
        self.limits = limits
        self.disabled = disabled
        self.strict = strict
        self.log = log
        self.contract_errors = 0
        self.internal_errors = 0
        self.artifacts_kept = 0
        self.artifacts_dropped: dict[str, int] = {}
        self.pressure = pressure
        self._deliver = deliver
        self._open: dict[str, Step] = {}
        self.open_step: Callable[[str, Step], None] = self._open.__setitem__
        self.close_step: Callable[[str, None], Step | None] = self._open.pop

    def submit(self, run_id: str, kind: str, body: dict[str, Any], raw: bool = False) -> None:
        """Encode `body` now (later changes to the caller's objects must not leak in) and queue
        it. `raw`: the body holds `RawJson` fragments to splice in."""
        if self.disabled:
            return
        try:
            self._deliver(Item(run_id, kind, encode(body) if raw else dumps(body)))
        except Exception as exc:
            self.internal_error(exc)

    def contract_error(self, message: str, *, raising: bool = True, once: str | None = None) -> None:
        """Count an instrumentation mistake; raise it in strict mode, else log it. With
        `raising=False` (the pipeline's own exception is on its way) it is only counted. A mistake
        with a `once` key is also warned (`XRayContractWarning`) the first time in the process: a
        library's log goes nowhere until the application configures logging, and a typo that
        quietly changes what is stored must be seen."""
        self.contract_errors += 1
        if not raising:
            return
        if self.strict:
            raise XRayContractError(message)
        if once is not None and once not in _warned:
            _warned.add(once)
            warnings.warn(f"X-Ray instrumentation problem: {message}", XRayContractWarning, stacklevel=4)
        self.log.warning("contract", "X-Ray instrumentation problem: %s", message)

    def internal_error(self, exc: BaseException) -> None:
        """Count a bug of the SDK's own; the pipeline carries on."""
        self.internal_errors += 1
        self.log.warning("internal", "X-Ray SDK error (the pipeline is unaffected): %s", type(exc).__name__)

    def artifact_kept(self) -> None:
        """Count an artifact whose payload goes out with its step."""
        self.artifacts_kept += 1

    def artifact_dropped(self, reason: str) -> None:
        """Count an artifact the SDK decided not to send, by reason."""
        self.artifacts_dropped[reason] = self.artifacts_dropped.get(reason, 0) + 1

    def send_overdue_starts(self, threshold: float) -> None:
        """Send a step_start for each open step that started before `threshold` (monotonic)
        and has not sent one; the step decides, so it sends at most one."""
        for step in list(self._open.values()):
            event = step.start_event_if_due(threshold)
            if event is not None:
                self.submit(step.run.run_id, EVENT, event)

    def forget_open_steps(self) -> None:
        """In a forked child: the parent's open steps are not the child's to report."""
        self._open.clear()

"""X-Ray SDK: standard library only, so it can be vendored into any pipeline.

    import xray_sdk

    client = xray_sdk.Client("http://127.0.0.1:8000")
    with client.start_run("competitor_selection", entity="B0PHONECASE1") as run:
        with run.step("compat_filter", "filter") as step:
            kept = [c for c in candidates if c.category == product.category]
            step.candidates(candidates, kept).why("kept candidates of the same category")

This package also holds X-Ray's shared vocabulary (step types, required metrics, capture
levels, limits); the server imports it from here.
"""

from __future__ import annotations

import threading
from typing import Any

from .client import Client
from .context import current_run, current_step
from .contract.limits import DEFAULT_LIMITS, Limits
from .contract.metrics import MetricsVerdict, derive_drop_ratio, evaluate_metrics
from .contract.vocabulary import (
    CAPTURE_LEVELS,
    EVENT_TYPES,
    REQUIRED_METRICS,
    STANDARD_METRICS,
    STEP_TYPES,
    CaptureLevel,
    EventType,
    RunStatus,
    StepStatus,
    StepType,
)
from .delivery.worker import DeliveryConfig
from .errors import XRayContractError, XRayContractWarning, XRayDeliveryError, XRayError
from .run import Run, step
from .step import Step
from .summarize import sample, summarize

_default: Client | None = None
_default_lock = threading.Lock()


def configure(endpoint: str | None = None, **options: Any) -> Client:
    """Make the module-level default client (replacing and closing any earlier one)."""
    global _default
    with _default_lock:
        previous, _default = _default, Client(endpoint, **options)
    if previous is not None:
        previous.close(0.5)
    return _default


def get_client() -> Client:
    """The module-level default client, made from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def start_run(pipeline: str, entity: str, **options: Any) -> Run:
    """`get_client().start_run(...)`: the one-line case."""
    return get_client().start_run(pipeline, entity, **options)


def flush(timeout: float = 5.0) -> bool:
    """Flush the default client."""
    return get_client().flush(timeout)


def stats() -> dict[str, Any]:
    """The default client's counters."""
    return get_client().stats()


__all__ = [
    "CAPTURE_LEVELS",
    "DEFAULT_LIMITS",
    "EVENT_TYPES",
    "REQUIRED_METRICS",
    "STANDARD_METRICS",
    "STEP_TYPES",
    "CaptureLevel",
    "Client",
    "DeliveryConfig",
    "EventType",
    "Limits",
    "MetricsVerdict",
    "Run",
    "RunStatus",
    "Step",
    "StepStatus",
    "StepType",
    "XRayContractError",
    "XRayContractWarning",
    "XRayDeliveryError",
    "XRayError",
    "configure",
    "current_run",
    "current_step",
    "derive_drop_ratio",
    "evaluate_metrics",
    "flush",
    "get_client",
    "sample",
    "start_run",
    "stats",
    "step",
    "summarize",
]

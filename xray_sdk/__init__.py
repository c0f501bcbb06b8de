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

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .steps import Step
    from .summaries import sample, summarize

# Each public name and the module it lives in, imported when first used: importing the shared
# vocabulary (`xray_sdk.contract`) from the server, or from the TypeScript generator, then loads
# the contract alone, and not the delivery thread and its exit hook.
_LAZY = {
    "Client": ".client",
    "current_run": ".context",
    "current_step": ".context",
    "DEFAULT_LIMITS": ".contract.limits",
    "Limits": ".contract.limits",
    "MetricsVerdict": ".contract.metrics",
    "derive_drop_ratio": ".contract.metrics",
    "evaluate_metrics": ".contract.metrics",
    **dict.fromkeys(
        (
            "CAPTURE_LEVELS",
            "EVENT_TYPES",
            "REQUIRED_METRICS",
            "STANDARD_METRICS",
            "STEP_TYPES",
            "CaptureLevel",
            "EventType",
            "RunStatus",
            "StepStatus",
            "StepType",
        ),
        ".contract.vocabulary",
    ),
    "DeliveryConfig": ".delivery.worker",
    **dict.fromkeys(("XRayContractError", "XRayContractWarning", "XRayDeliveryError", "XRayError"), ".errors"),
    "Run": ".run",
    "step": ".run",
    "Step": ".steps",
    "sample": ".summaries",
    "summarize": ".summaries",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xray_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


_default: Client | None = None
_default_lock = threading.Lock()


def configure(endpoint: str | None = None, **options: Any) -> Client:
    """Make the module-level default client (replacing and closing any earlier one)."""
    global _default
    from .client import Client

    with _default_lock:
        previous, _default = _default, Client(endpoint, **options)
    if previous is not None:
        previous.close(0.5)
    return _default


def get_client() -> Client:
    """The module-level default client, made from the environment on first use."""
    global _default
    from .client import Client

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

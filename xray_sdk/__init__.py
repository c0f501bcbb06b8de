"""X-Ray SDK: standard library only, so it can be vendored into any pipeline.

This package also holds X-Ray's shared vocabulary (step types, required metrics, capture
levels, limits); the server imports it from here.
"""
from .contract import MetricsVerdict, derive_drop_ratio, evaluate_metrics
from .limits import DEFAULT_LIMITS, Limits
from .vocabulary import (
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

__all__ = [
    "CAPTURE_LEVELS",
    "DEFAULT_LIMITS",
    "EVENT_TYPES",
    "REQUIRED_METRICS",
    "STANDARD_METRICS",
    "STEP_TYPES",
    "CaptureLevel",
    "EventType",
    "Limits",
    "MetricsVerdict",
    "RunStatus",
    "StepStatus",
    "StepType",
    "derive_drop_ratio",
    "evaluate_metrics",
]

"""Exceptions the SDK raises, in strict mode only: best_effort mode never raises."""

from __future__ import annotations


class XRayError(Exception):
    """Base class of X-Ray SDK errors."""


class XRayContractError(XRayError):
    """An instrumentation mistake: an unknown step type, a missing or ill-typed required
    metric, a drop_ratio that disagrees with the counts. Raised in strict mode only."""


class XRayContractWarning(UserWarning):
    """An instrumentation mistake that would otherwise pass unseen in best_effort mode (an unknown
    step type): warned once per process and mistake, where Python shows warnings by default."""


class XRayDeliveryError(XRayError):
    """`flush()` in strict mode: some events were lost; the message says how many and why."""

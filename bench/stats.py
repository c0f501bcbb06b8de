"""Percentiles for the benchmarks, one definition for all of them."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank `p` quantile (0 to 1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

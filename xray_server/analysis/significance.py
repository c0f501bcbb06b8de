"""The one-sided Fisher exact test, for "is this attribute value over-represented among the bad
runs?". Written here rather than taken from scipy: it is a few lines over `math.lgamma`, and the
server would otherwise carry a large numerical library for one function. Checked against exact
rational arithmetic in the tests."""

from __future__ import annotations

import math


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """P(X >= a) for the 2x2 table [[a, b], [c, d]] with its margins fixed: the chance that runs
    with the value hold at least `a` of the bad runs if the value had nothing to do with badness.
    Rows: has the value / has not; columns: bad / other. A table with a negative cell describes no
    runs at all: it is refused with `ValueError`, never given a p-value."""
    if min(a, b, c, d) < 0:
        raise ValueError(f"impossible 2x2 table [[{a}, {b}], [{c}, {d}]]: a negative cell is no count of runs")
    with_value, bad, total = a + b, a + c, a + b + c + d
    if with_value == 0 or bad == 0:
        return 1.0
    top = min(with_value, bad)
    log_denominator = _log_comb(total, with_value)
    terms = [_log_comb(bad, x) + _log_comb(total - bad, with_value - x) - log_denominator for x in range(a, top + 1)]
    if not terms:
        return 0.0
    peak = max(terms)
    return min(1.0, math.exp(peak) * math.fsum(math.exp(t - peak) for t in terms))

"""Whether something a run had (a truncated search, a minority model) tied earlier runs to ending
like it: the earlier runs split by whether they had it and by whether they ended so, and the
one-sided Fisher test on the table. The cap rule (`explain_trace.py`) and the segment rule
(`explain_segment.py`) both ask it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xray_server.analysis import thresholds as t
from xray_server.analysis.significance import fisher_greater

# An earlier run: its steps by name.
EarlierRun = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Tie:
    """The earlier runs with the attribute (`with_*`) and without it (`other_*`): how many, and the
    share of them that ended like the run explained."""

    with_runs: int
    with_ended: int
    other_runs: int
    other_ended: int
    p_value: float

    @property
    def with_share(self) -> float:
        return self.with_ended / self.with_runs

    @property
    def other_share(self) -> float:
        return self.other_ended / self.other_runs

    @property
    def significant(self) -> bool:
        """The runs with it ended so significantly more often (Fisher at `RECALL_ALPHA`), at least
        `MIN_RISK_RATIO` times as often, and at least `MIN_RECALL_RUNS` of them did."""
        return (
            self.with_ended >= t.MIN_RECALL_RUNS
            and self.p_value <= t.RECALL_ALPHA
            and self.with_share >= t.MIN_RISK_RATIO * self.other_share
        )


def tie(
    earlier_runs: dict[str, EarlierRun], had: Callable[[EarlierRun], bool | None], ended: Callable[[EarlierRun], bool]
) -> Tie | None:
    """The table over the earlier runs for which `had` says yes or no (None: the run says
    nothing), or None when either side holds no run."""
    table = [[0, 0], [0, 0]]
    for run in earlier_runs.values():
        has = had(run)
        if has is not None:
            table[0 if has else 1][0 if ended(run) else 1] += 1
    (a, b), (c, d) = table
    if a + b == 0 or c + d == 0:
        return None
    return Tie(a + b, a, c + d, c, fisher_greater(a, b, c, d))

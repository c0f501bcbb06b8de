"""Why each candidate was kept or dropped, as signal that stays queryable.

Counts are exact over every candidate (they become metrics: `candidates_in`,
`candidates_out`, `drop_ratio` and the rejection count per reason, never dropped); samples are
bounded and stratified (every kept candidate up to a cap, and up to K rejected candidates per
reason, the first K, so a rare reason is still represented) and become artifacts, which may be.
Under `full` capture the complete rejected list is kept as an artifact too.
"""
from __future__ import annotations

from typing import Any, Iterable

from .contract.limits import Limits
from .contract.vocabulary import OTHER_REASON


class Decisions:
    """The keep/reject record of one step. Cheap per candidate: a counter and, while the
    sample for that reason is not full, an append."""

    __slots__ = ("limits", "keep_all", "kept", "kept_sample", "counts", "samples", "rejected_all")

    def __init__(self, limits: Limits, keep_all: bool) -> None:
        self.limits = limits
        self.keep_all = keep_all
        self.kept = 0
        self.kept_sample: list[Any] = []
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[Any]] = {}
        self.rejected_all: list[dict[str, Any]] | None = [] if keep_all else None

    def keep(self, candidate: Any) -> None:
        self.kept += 1
        if len(self.kept_sample) < self.limits.kept_sample_size:
            self.kept_sample.append(candidate)

    def reject(self, candidate: Any, reason: str) -> None:
        if type(reason) is not str or len(reason) > self.limits.max_reason_chars or not reason:
            reason = _bounded_reason(reason, self.limits)
        count = self.counts.get(reason, 0)
        self.counts[reason] = count + 1
        if count < self.limits.rejected_sample_per_reason:
            self.samples.setdefault(reason, []).append(candidate)
        if self.rejected_all is not None:
            self.rejected_all.append({"reason": reason, "candidate": candidate})

    def extend(self, kept: Iterable[Any], rejected: Iterable[tuple[Any, str]]) -> None:
        for candidate in kept:
            self.keep(candidate)
        for candidate, reason in rejected:
            self.reject(candidate, reason)

    @property
    def rejected(self) -> int:
        return sum(self.counts.values())

    def reason_counts(self) -> dict[str, int]:
        """The most frequent reasons, the rest folded into `other`: bounded whatever the step did."""
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = dict(ranked[: self.limits.max_reasons])
        rest = sum(count for _, count in ranked[self.limits.max_reasons:])
        if rest:
            top[OTHER_REASON] = top.get(OTHER_REASON, 0) + rest
        return top

    def rejected_sample(self) -> list[dict[str, Any]]:
        """Up to K candidates per reason, reasons in order of frequency."""
        order = sorted(self.samples, key=lambda reason: (-self.counts[reason], reason))
        return [{"reason": reason, "candidate": c} for reason in order for c in self.samples[reason]]


def _bounded_reason(reason: Any, limits: Limits) -> str:
    from .values import label

    return label(reason, limits.max_reason_chars) if reason not in (None, "") else "unspecified"

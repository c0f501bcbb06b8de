"""Why each candidate was kept or dropped, as signal that stays queryable.

Counts are exact over every candidate (they become metrics: `candidates_in`,
`candidates_out`, `drop_ratio` and the rejection count per reason, never dropped); samples are
bounded and stratified (every kept candidate up to a cap, and up to K rejected candidates per
reason, the first K, so a rare reason is still represented) and become artifacts, which may be.
Under `full` capture the complete rejected list is kept as an artifact too.

When a candidate's id is known (given to `keep`/`reject`, else the step's `id_field` of the
candidate), its evidence entry carries it as a string, so `why-dropped` finds the candidate
whatever its shape: `{"id": ..., "candidate": c}` kept, `{"reason": r, "id": ..., "candidate": c}`
rejected. Without an id the entries are the candidate itself and `{"reason": r, "candidate": c}`.
Ids are looked up only for the candidates in the evidence, when the step ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .contract.limits import Limits
from .contract.vocabulary import OTHER_REASON
from .values import label


class _Identified:
    """A candidate in a sample with the id its caller gave (a private type: never a candidate)."""

    __slots__ = ("candidate", "id")

    def __init__(self, candidate: Any, id: Any) -> None:
        self.candidate = candidate
        self.id = id


class Decisions:
    """The keep/reject record of one step. Cheap per candidate: a counter and, while the
    sample for that reason is not full, an append."""

    __slots__ = ("limits", "keep_all", "id_field", "kept", "kept_sample", "counts", "samples", "rejected_all")

    def __init__(self, limits: Limits, keep_all: bool, id_field: str | None = None) -> None:
        self.limits = limits
        self.keep_all = keep_all
        self.id_field = id_field
        self.kept = 0
        self.kept_sample: list[Any] = []
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[Any]] = {}
        self.rejected_all: list[tuple[str, Any]] | None = [] if keep_all else None

    def keep(self, candidate: Any, id: Any = None) -> None:
        self.kept += 1
        if len(self.kept_sample) < self.limits.kept_sample_size:
            self.kept_sample.append(candidate if id is None else _Identified(candidate, id))

    def reject(self, candidate: Any, reason: str, id: Any = None) -> None:
        if type(reason) is not str or len(reason) > self.limits.max_reason_chars or not reason:
            reason = _bounded_reason(reason, self.limits)
        count = self.counts.get(reason, 0)
        self.counts[reason] = count + 1
        if count < self.limits.rejected_sample_per_reason:
            self.samples.setdefault(reason, []).append(candidate if id is None else _Identified(candidate, id))
        if self.rejected_all is not None:
            self.rejected_all.append((reason, candidate if id is None else _Identified(candidate, id)))

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
        rest = sum(count for _, count in ranked[self.limits.max_reasons :])
        if rest:
            top[OTHER_REASON] = top.get(OTHER_REASON, 0) + rest
        return top

    def kept_evidence(self) -> list[Any]:
        """The kept sample: each candidate, or `{"id", "candidate"}` when its id is known."""
        out: list[Any] = []
        for item in self.kept_sample:
            candidate, known = self._identify(item)
            out.append(candidate if known is None else {"id": known, "candidate": candidate})
        return out

    def rejected_sample(self) -> list[dict[str, Any]]:
        """Up to K candidates per reason, reasons in order of frequency."""
        order = sorted(self.samples, key=lambda reason: (-self.counts[reason], reason))
        return [self._rejected_entry(reason, item) for reason in order for item in self.samples[reason]]

    def kept_ids(self) -> list[dict[str, str]] | None:
        """The kept sample as ids only (`{"id"}`), or None when a candidate in it has no id."""
        ids = [self._identify(item)[1] for item in self.kept_sample]
        return None if None in ids else [{"id": known} for known in ids if known is not None]

    def rejected_ids(self) -> list[dict[str, str]] | None:
        """The rejected sample as ids only (`{"reason", "id"}`), or None when one has no id."""
        order = sorted(self.samples, key=lambda reason: (-self.counts[reason], reason))
        entries = [(reason, self._identify(item)[1]) for reason in order for item in self.samples[reason]]
        if any(known is None for _, known in entries):
            return None
        return [{"reason": reason, "id": known} for reason, known in entries if known is not None]

    def rejected_all_evidence(self) -> list[dict[str, Any]]:
        """Every rejected candidate, in the order decided (kept only under `full` capture)."""
        return [self._rejected_entry(reason, item) for reason, item in self.rejected_all or ()]

    def _rejected_entry(self, reason: str, item: Any) -> dict[str, Any]:
        candidate, known = self._identify(item)
        if known is None:
            return {"reason": reason, "candidate": candidate}
        return {"reason": reason, "id": known, "candidate": candidate}

    def _identify(self, item: Any) -> tuple[Any, str | None]:
        """The candidate and its id as text, if known: the caller's `id=` wins over `id_field`."""
        if type(item) is _Identified:
            return item.candidate, _id_text(item.id, self.limits)
        if self.id_field is None:
            return item, None
        return item, _id_text(_field(item, self.id_field), self.limits)


def _field(candidate: Any, name: str) -> Any:
    """`candidate[name]` for a mapping, else `candidate.name`; None when it has neither."""
    try:
        if isinstance(candidate, Mapping):
            return candidate.get(name)
        return getattr(candidate, name, None)
    except Exception:  # a candidate's own __getattr__ or __getitem__ may raise anything
        return None


def _id_text(value: Any, limits: Limits) -> str | None:
    if value is None:
        return None
    try:
        text = value if type(value) is str else str(value)
    except Exception:  # an id whose __str__ raises is no id
        return None
    # Not remembered: ids are many and each seen once, and would crowd step names out of the cache.
    return label(text, limits.max_name_chars, remember=False) if text else None


def _bounded_reason(reason: Any, limits: Limits) -> str:
    return label(reason, limits.max_reason_chars) if reason not in (None, "") else "unspecified"

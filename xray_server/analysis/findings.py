"""The vocabulary of `explain`: what a finding is, how strong, what role it plays in the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class FindingClass(str, Enum):
    """What a finding is about, strongest first: a cause is chosen from the strongest class present."""

    FAULT = "fault"  # the step raised, or never ended
    DECISION = "decision"  # what the step did with what it was given
    VOLUME = "volume"  # how many candidates came in or went out
    TIME = "time"  # the step was slow
    EVIDENCE = "evidence"  # evidence the step meant to keep was lost: never a cause

    @property
    def order(self) -> int:
        return list(FindingClass).index(self)


class Strength(str, Enum):
    """How much a finding says on its own."""

    # Unusual by every reading: a cause when it is the step's own doing.
    STRONG = "strong"
    # A minority value of a categorical metric: a cause only when corroborated.
    WEAK = "weak"
    # Far by distance but not unusual on its own (a volume at the decisions' distance): never
    # shown, strong when a later step is starved by it.
    MILD = "mild"


class Role(str, Enum):
    CAUSE = "cause"
    EFFECT = "effect"
    UNUSUAL = "unusual"


class SymptomKind(str, Enum):
    """What went wrong in a run, as a user would see it."""

    ERROR = "error"  # a step raised or never ended
    EMPTY = "empty"  # a step output nothing where it usually outputs something
    WORSE_END = "worse_end"  # the run's final decisions came out far worse than usual
    MISSING_METRICS = "missing_metrics"  # a step stopped recording what it usually records
    SLOW = "slow"  # a step took far longer than usual


@dataclass(frozen=True)
class StepRef:
    """The step a finding is about."""

    name: str
    seq: int
    step_id: str
    parent_step_id: str | None
    step_type: str

    @classmethod
    def of(cls, step: dict[str, Any]) -> StepRef:
        """The reference to a step of a run view."""
        return cls(step["name"], step["seq"], step["step_id"], step.get("parent_step_id"), step["step_type"])


@dataclass(frozen=True)
class Finding:
    """One unusual fact of one step of the run."""

    kind: str
    cls: FindingClass
    strength: Strength
    # The step's own doing (False: it follows from what the step was given).
    own: bool
    # Rarity, on one scale for every kind: the share of earlier steps that were not at least this
    # extreme (1.0: none was).
    score: float
    step: StepRef
    message: str
    why: str | None
    feature: str | None = None
    # The value moved the way that makes the outcome worse (lower output or score, more dropped).
    worse: bool = False
    corroborated: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Symptom:
    """What went wrong in the run, and where it shows."""

    kind: SymptomKind
    step: StepRef
    message: str

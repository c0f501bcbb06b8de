"""What a step usually does, and how far from it a value of this run is: every numeric and
categorical feature of a step, against the same step (pipeline and name) in earlier runs.

A numeric value is read three ways, each against the baseline's own distribution, whatever its
shape (tied, bounded, skewed, in two segments, heavy-tailed):

- its **robust distance** from the median, in units of the biweight scale (a spread that bad runs
  of one bug do not widen until they are half of the baseline), on a log scale for counts and
  durations;
- its **tail share**: how many earlier runs were at least as extreme, on the same side (ties
  count), so that a value one normal run in ten shares is never unusual, whatever its distance;
- whether it sits in a **cluster apart** from the core: an empty stretch between it and the
  median, as a bug's values leave and a legitimate long tail does not.

A value is unusual when all three say so, and it moved by the minimum effect. A categorical value
is unusual when nearly no earlier step had it, and weakly unusual when a minority had it. The
numbers are in `thresholds.py`.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xray_sdk.contract.vocabulary import StepType
from xray_server.analysis import thresholds as t

COUNTS = ("candidates_in", "candidates_out")
# A filter's drop ratio is its decision. A rank's or a select's follows from how many it was
# given (a select keeps one: its ratio says how many it chose from, not what went wrong).
DROP_RATIO_STEPS = (StepType.FILTER.value,)


@dataclass(frozen=True)
class Reading:
    """One feature of a step against its baseline."""

    feature: str
    value: Any
    usual: Any
    # Robust distance from the median, signed (numeric); 0 for a categorical value.
    distance: float
    # The share of earlier steps at least as extreme (numeric), or with the same value (categorical).
    tail: float
    # Numeric: far, rare and apart from the core. Categorical: rare.
    unusual: bool
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def lower(self) -> bool:
        return isinstance(self.value, (int, float)) and self.value < self.usual


def numeric_features(step: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Feature -> (value, scale) of a step: `log` for counts and durations, `ratio` for shares."""
    metrics = step["metrics"]
    out: dict[str, tuple[float, str]] = {}
    for name in COUNTS:
        if isinstance(metrics.get(name), int):
            out[name] = (float(metrics[name]), "log")
    if step["step_type"] in DROP_RATIO_STEPS and isinstance(metrics.get("drop_ratio"), (int, float)):
        out["drop_ratio"] = (float(metrics["drop_ratio"]), "ratio")
    if isinstance(step.get("duration_ms"), (int, float)):
        out["duration_ms"] = (float(step["duration_ms"]), "log")
    cin = metrics.get("candidates_in")
    if isinstance(cin, int) and cin > 0:
        for reason, count in (step.get("rejections") or {}).items():
            out[f"reason:{reason}"] = (count / cin, "ratio")
    for name, value in metrics.items():
        if name in out or name in COUNTS or name == "drop_ratio" or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[name] = (float(value), "linear")
    return out


def categorical_features(step: dict[str, Any]) -> dict[str, str]:
    """Feature -> value: the model and the string or boolean custom metrics."""
    return {name: str(value) for name, value in step["metrics"].items() if isinstance(value, (str, bool))}


@dataclass(frozen=True)
class _Located:
    """A numeric feature's baseline on its own scale: sorted points, centre, spread, usual value."""

    points: list[float]
    centre: float
    spread: float
    usual: float
    p10: float
    p90: float


class StepBaseline:
    """The baseline of one step name: its features over earlier runs."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.size = len(steps)
        self.numeric: dict[str, list[float]] = {}
        self.scales: dict[str, str] = {}
        self.categorical: dict[str, Counter[str]] = {}
        self.violations = sum(1 for s in steps if s["contract_violations"])
        self.errors = sum(1 for s in steps if s["status"] == "error")
        reasons: set[str] = set()
        for step in steps:
            for name, (value, scale) in numeric_features(step).items():
                self.numeric.setdefault(name, []).append(value)
                self.scales[name] = scale
            for name, value in categorical_features(step).items():
                self.categorical.setdefault(name, Counter())[value] += 1
            reasons.update(step.get("rejections") or {})
        # A step without a reason removed no candidate for it: a share of 0, not a missing value.
        with_input = [
            s for s in steps if isinstance(s["metrics"].get("candidates_in"), int) and s["metrics"]["candidates_in"] > 0
        ]
        self._with_input = len(with_input)
        for reason in reasons:
            self.numeric[f"reason:{reason}"] = [
                (s.get("rejections") or {}).get(reason, 0) / s["metrics"]["candidates_in"] for s in with_input
            ]
            self.scales[f"reason:{reason}"] = "ratio"
        for name, scale in self.scales.items():
            if scale == "linear":
                self.scales[name] = _custom_scale(self.numeric[name])
        # A feature is read several times per step (its input and output at more than one
        # distance): located once.
        self._located: dict[str, _Located] = {}

    @property
    def trusted(self) -> bool:
        return self.size >= t.MIN_BASELINE

    def _values(self, feature: str) -> list[float] | None:
        if feature.startswith("reason:") and feature not in self.numeric and self._with_input:
            # A reason no earlier step gave removed nothing in each of them.
            self.numeric[feature], self.scales[feature] = [0.0] * self._with_input, "ratio"
        return self.numeric.get(feature)

    def usual(self, feature: str) -> float | None:
        values = self._values(feature)
        return statistics.median(values) if values else None

    def share(self, feature: str, predicate: Any) -> float:
        """The share of earlier steps whose `feature` satisfies `predicate`."""
        values = self._values(feature) or []
        return sum(1 for v in values if predicate(v)) / len(values) if values else 0.0

    def _locate(self, feature: str) -> _Located | None:
        if feature in self._located:
            return self._located[feature]
        values = self._values(feature)
        if not values or len(values) < t.MIN_BASELINE:
            return None
        scale = self.scales[feature]
        points = sorted(_transform(scale, v) for v in values)
        centre = statistics.median(points)
        floor = t.SCALE_FLOOR[scale] * (1.0 if scale != "linear" else max(abs(centre), 1.0))
        spread = max(biweight_scale(points, centre) or _tied_scale(points, centre), floor)
        located = _Located(
            points, centre, spread, statistics.median(values), _quantile(values, 0.1), _quantile(values, 0.9)
        )
        self._located[feature] = located
        return located

    def moved(self, feature: str, value: float, min_z: float) -> bool:
        """Whether `value` is at least `min_z` spreads from the baseline's median, with the minimum
        effect: "it moved", with no claim that it is unusual."""
        located = self._locate(feature)
        if located is None:
            return False
        z = (_transform(self.scales[feature], value) - located.centre) / located.spread
        return abs(z) >= min_z and _large_enough(feature, self.scales[feature], value, located.usual, located)

    def read(self, feature: str, value: float, min_z: float, *, large: bool = False) -> Reading | None:
        """The reading of `value` when it is at least `min_z` spreads from the median with the
        minimum effect (or `large`: the caller knows the effect is large), else None. `unusual` when, besides, at most `MAX_TAIL_SHARE` of earlier
        steps were as extreme and the value sits apart from the core."""
        located = self._locate(feature)
        if located is None:
            return None
        scale = self.scales[feature]
        point = _transform(scale, value)
        z = (point - located.centre) / located.spread
        if abs(z) < min_z or not (large or _large_enough(feature, scale, value, located.usual, located)):
            return None
        tail = tail_share(located.points, point, located.centre)
        edge = core_edge(located.points, point, located.centre)
        apart = gap_share(located.points, point, edge) >= gap_needed(located.points, point, edge)
        return Reading(
            feature,
            value,
            located.usual,
            round(z, 2),
            round(tail, 4),
            tail <= t.MAX_TAIL_SHARE and apart,
            {
                "feature": feature,
                "value": _round(value),
                "usual": _round(located.usual),
                "robust_z": round(z, 1),
                "tail_share": round(tail, 4),
                "apart": apart,
                "baseline_steps": len(located.points),
                "p10": _round(located.p10),
                "p90": _round(located.p90),
            },
        )

    def read_category(self, feature: str, value: str) -> Reading | None:
        """The reading of a categorical value a minority of earlier steps had (None for the mode, a
        feature the step rarely records, or a value shared too widely to stand out); `unusual`
        when nearly none had it."""
        counts = self.categorical.get(feature)
        total = sum(counts.values()) if counts else 0
        if counts is None or total < t.MIN_BASELINE:
            return None
        mode, mode_count = counts.most_common(1)[0]
        share = counts.get(value, 0) / total
        if value == mode:
            return None
        rare = share <= t.RARE_CATEGORY_SHARE
        if not rare and not (mode_count / total >= t.MODE_SHARE and share <= t.WEAK_SHARE):
            return None
        return Reading(
            feature,
            value,
            mode,
            0.0,
            round(share, 4),
            rare,
            {
                "feature": feature,
                "value": value,
                "usual": mode,
                "usual_share": round(mode_count / total, 3),
                "share": round(share, 3),
                "baseline_steps": total,
            },
        )


def tail_share(points: list[float], point: float, centre: float) -> float:
    """The share of sorted `points` at least as extreme as `point`, on its side of `centre`."""
    if point < centre:
        return bisect.bisect_right(points, point) / len(points)
    return (len(points) - bisect.bisect_left(points, point)) / len(points)


def core_edge(points: list[float], point: float, centre: float) -> float:
    """Where the core of sorted `points` begins on `point`'s side of `centre`: the quantile that
    `MAX_TAIL_SHARE` of the points lie beyond. A bug's cluster (at most that share) lies beyond it,
    so the stretch between them is where its gap shows."""
    q = t.MAX_TAIL_SHARE if point < centre else 1 - t.MAX_TAIL_SHARE
    return points[min(len(points) - 1, int(q * len(points)))]


def gap_share(points: list[float], point: float, edge: float) -> float:
    """The widest stretch between `point` and `edge` that holds none of the sorted `points`, as a
    share of the distance between them: 1.0 when nothing lies between, near 0 in a filled tail, 0
    when the point is not beyond the edge."""
    distance = abs(point - edge)
    if distance == 0:
        return 0.0
    low, high = min(point, edge), max(point, edge)
    inside = points[bisect.bisect_right(points, low) : bisect.bisect_left(points, high)]
    edges = [low, *inside, high]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False)) / distance


def gap_needed(points: list[float], point: float, edge: float) -> float:
    """The gap share that says "apart" between `point` and the core's `edge`: GAP_SHARE, or more
    when few earlier values lie between them. Among k values spread evenly at random, the widest
    gap is about ln(k + 1) / (k + 1) of the stretch, so a sparse legitimate tail has wide gaps by
    chance."""
    low, high = min(point, edge), max(point, edge)
    # No value lies strictly between a point and an edge it equals (ties would make k negative).
    k = max(0, bisect.bisect_left(points, high) - bisect.bisect_right(points, low))
    return max(t.GAP_SHARE, t.GAP_CHANCE * math.log(k + 1) / (k + 1))


def biweight_scale(points: list[float], centre: float) -> float:
    """The biweight midvariance's scale of `points` around `centre` (the sample size counts only the
    points with weight), 0.0 when half of them or more sit on the centre."""
    mad = statistics.median(abs(x - centre) for x in points)
    if mad == 0:
        return 0.0
    near = [(x - centre, (x - centre) / (t.BIWEIGHT_C * mad)) for x in points]
    near = [(d, u) for d, u in near if abs(u) < 1]
    top = sum(d * d * (1 - u * u) ** 4 for d, u in near)
    bottom = sum((1 - u * u) * (1 - 5 * u * u) for _, u in near)
    return math.sqrt(len(near) * top) / abs(bottom) if bottom else 0.0


def _tied_scale(points: list[float], centre: float) -> float:
    """The spread when half the points or more sit on the centre (a reason's share that is often 0)."""
    return _quantile([abs(x - centre) for x in points], t.TIED_QUANTILE) / t.TIED_TO_SD


def _transform(scale: str, value: float) -> float:
    return math.log1p(max(value, 0.0)) if scale == "log" else value


def _custom_scale(values: list[float]) -> str:
    """A custom metric is a count when every value is whole and non-negative (0 and 1 included: a
    metric that is only ever 0 or 1 counts something), a share when every value is within [0, 1],
    and linear otherwise."""
    if all(v >= 0 and v == int(v) for v in values):
        return "log"
    if all(0.0 <= v <= 1.0 for v in values):
        return "ratio"
    return "linear"


def _large_enough(feature: str, scale: str, value: float, usual: float, located: _Located) -> bool:
    """The minimum effect (`thresholds.py`): counts halved or doubled and by 2, durations tripled
    and 50 ms longer, shares moved by 0.2, other metrics by a quarter of their usual size and by
    their p10-p90 range."""
    gap = abs(value - usual)
    if feature == "duration_ms":
        return value >= t.DURATION_FACTOR * usual and value - usual >= t.DURATION_GAP_MS
    if scale == "log":
        return gap >= t.COUNT_GAP and (value >= t.COUNT_FACTOR * usual or value <= usual / t.COUNT_FACTOR)
    if scale == "ratio":
        return gap >= t.SHARE_GAP
    return gap >= max(t.CUSTOM_SHARE_OF_USUAL * abs(usual), located.p90 - located.p10, 1e-9)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _round(value: float) -> float:
    return round(value, 4) if isinstance(value, float) else value

"""What a step usually does, held robustly: every numeric and categorical feature of a step,
compared with the same step (pipeline and name) in recent runs.

- **Numeric features**: candidate counts, the drop ratio of a reducing step, the duration, each
  rejection reason's share of the input, and every numeric custom metric. A value is unusual when
  it is far from the baseline's median in units of its biweight scale (the biweight midvariance,
  started from the median absolute deviation): a robust distance that bad runs of the same bug,
  often 10 to 30% of recent runs and sometimes more, do not drag along (it breaks down only past
  50%), yet that follows the whole core of a step whose values spread far. Counts and durations
  are compared on a log scale (they spread by factors, not by amounts). A minimum effect is
  required on top, so that a metric that barely varies is not flagged for moving a little.
- **Categorical features**: the model and every string or boolean custom metric. A value is
  unusual when nearly no recent step had it; a minority value of a metric that takes two values
  in normal runs is only *weakly* unusual: it can be a cause only when something stronger follows
  or its own step's output moved with it.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from xray_sdk.contract.vocabulary import REDUCING_STEP_TYPES

# A baseline of fewer steps than this says nothing about "usual".
MIN_BASELINE = 20
# The spread is the biweight midvariance's scale around the median: values past BIWEIGHT_C median
# absolute deviations weigh nothing, so up to half of recent runs may share one bug without
# widening it, while a step whose values spread far (a heavy tail, several kinds of input) is
# held to its whole core, not to a narrow middle as the MAD alone would.
BIWEIGHT_C = 9.0
# When half the values or more tie at the median (no MAD), the spread is this quantile of the
# distances to the median, in standard deviations of normal data.
TIED_QUANTILE = 0.65
TIED_TO_SD = 0.935
# Robust distance past which a value is unusual (in spreads): a step's decisions (ratios,
# reasons, scores) and durations at 4; volumes (counts of candidates, which spread by factors and
# differ by kind of input) at 8. A distance of 3 is mild: it can only corroborate a weak finding.
MIN_Z = {"decision": 4.0, "time": 4.0, "volume": 8.0}
MILD_Z = 3.0
# A weak categorical finding is corroborated by its own step's output moving this far (with the
# minimum effect): the step changed what it used and what it produced together.
WITH_OUTPUT_Z = 2.0
# Floors of the spread, so a metric that never varies is not "infinitely" far for any change.
SCALE_FLOOR = {"log": 0.25, "ratio": 0.03, "linear": 1e-6}
# Categorical values this rare in the baseline are unusual; a value the baseline's mode
# dominates (its share at least MODE_SHARE) but that a minority had is weakly unusual.
RARE_SHARE = 0.02
MODE_SHARE = 0.6
WEAK_SHARE = 0.4
COUNTS = ("candidates_in", "candidates_out")


@dataclass
class Deviation:
    """One feature of the step, far from its baseline."""

    feature: str
    value: Any
    usual: Any
    distance: float
    strong: bool
    evidence: dict[str, Any]


def numeric_features(step: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Feature -> (value, scale) of a step: `log` for counts and durations, `ratio` for shares."""
    metrics = step["metrics"]
    out: dict[str, tuple[float, str]] = {}
    for name in COUNTS:
        if isinstance(metrics.get(name), int):
            out[name] = (float(metrics[name]), "log")
    if step["step_type"] in REDUCING_STEP_TYPES and isinstance(metrics.get("drop_ratio"), (int, float)):
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


class StepBaseline:
    """The baseline of one step name: its features over recent runs."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.size = len(steps)
        self.numeric: dict[str, list[float]] = {}
        self.scales: dict[str, str] = {}
        self.categorical: dict[str, Counter[str]] = {}
        reasons: set[str] = set()
        self.violations = sum(1 for s in steps if s["contract_violations"])
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
        for reason in reasons:
            self.numeric[f"reason:{reason}"] = [
                (s.get("rejections") or {}).get(reason, 0) / s["metrics"]["candidates_in"] for s in with_input
            ]
            self.scales[f"reason:{reason}"] = "ratio"
        for name, scale in self.scales.items():
            if scale == "linear":
                self.scales[name] = _custom_scale(self.numeric[name])
        # Feature -> (centre and spread on its scale, usual value): a feature is held to its baseline
        # several times per step (its input and output at more than one distance), computed once.
        self._located: dict[str, tuple[float, float, float]] = {}

    @property
    def trusted(self) -> bool:
        return self.size >= MIN_BASELINE

    def usual(self, feature: str) -> float | None:
        values = self.numeric.get(feature)
        return statistics.median(values) if values else None

    def numeric_deviation(self, feature: str, value: float, min_z: float = MILD_Z) -> Deviation | None:
        """The feature's deviation when `value` is at least `min_z` from the baseline (and the
        minimum effect), else None; `strong` is for the caller to decide."""
        values = self.numeric.get(feature)
        if not values or len(values) < MIN_BASELINE:
            return None
        scale = self.scales[feature]
        transform = (lambda v: math.log1p(max(v, 0.0))) if scale == "log" else (lambda v: v)
        if feature not in self._located:
            points = [transform(v) for v in values]
            centre = statistics.median(points)
            spread = max(
                biweight_scale(points, centre) or _tied_scale(points, centre),
                SCALE_FLOOR[scale] * (1.0 if scale != "linear" else max(abs(centre), 1.0)),
            )
            self._located[feature] = (centre, spread, statistics.median(values))
        centre, spread, usual = self._located[feature]
        z = (transform(value) - centre) / spread
        if abs(z) < min_z or not _large_enough(feature, scale, value, usual, values):
            return None
        return Deviation(
            feature,
            value,
            usual,
            round(z, 2),
            True,
            {
                "value": _round(value),
                "usual": _round(usual),
                "robust_z": round(z, 1),
                "baseline_steps": len(values),
                "p10": _round(_quantile(values, 0.1)),
                "p90": _round(_quantile(values, 0.9)),
            },
        )

    def categorical_deviation(self, feature: str, value: str) -> Deviation | None:
        """The feature's deviation when `value` is rare in the baseline, else None."""
        counts = self.categorical.get(feature)
        total = sum(counts.values()) if counts else 0
        if total < MIN_BASELINE or counts is None:
            return None
        mode, mode_count = counts.most_common(1)[0]
        share = counts.get(value, 0) / total
        if value == mode:
            return None
        strong = share <= RARE_SHARE
        if not strong and not (mode_count / total >= MODE_SHARE and share <= WEAK_SHARE):
            return None
        return Deviation(
            feature,
            value,
            mode,
            round(1 - share, 3),
            strong,
            {
                "value": value,
                "usual": mode,
                "usual_share": round(mode_count / total, 3),
                "share": round(share, 3),
                "baseline_steps": total,
            },
        )


def biweight_scale(points: list[float], centre: float) -> float:
    """The biweight midvariance's scale of `points` around `centre` (the sample size counts only the
    points with weight), 0.0 when half of them or more sit on the centre."""
    mad = statistics.median(abs(x - centre) for x in points)
    if mad == 0:
        return 0.0
    near = [(x - centre, (x - centre) / (BIWEIGHT_C * mad)) for x in points]
    near = [(d, u) for d, u in near if abs(u) < 1]
    top = sum(d * d * (1 - u * u) ** 4 for d, u in near)
    bottom = sum((1 - u * u) * (1 - 5 * u * u) for _, u in near)
    return math.sqrt(len(near) * top) / abs(bottom) if bottom else 0.0


def _tied_scale(points: list[float], centre: float) -> float:
    """The spread when half the points or more sit on the centre (a reason's share that is often 0):
    the 65th percentile of the distances, in standard deviations of normal data, so the other
    values still count as the step's usual spread."""
    return _quantile([abs(x - centre) for x in points], TIED_QUANTILE) / TIED_TO_SD


def _custom_scale(values: list[float]) -> str:
    """A custom metric is a share when every value is within [0, 1], a count when every value is
    whole and non-negative, and linear otherwise."""
    if all(0.0 <= v <= 1.0 for v in values):
        return "ratio"
    if all(v >= 0 and v == int(v) for v in values):
        return "log"
    return "linear"


def _large_enough(feature: str, scale: str, value: float, usual: float, values: list[float]) -> bool:
    """The minimum effect: counts at least halved or doubled (and by 2 or more), durations tripled
    and 50 ms longer, shares moved by 0.2, other metrics by a quarter of their usual size or of
    their range."""
    gap = abs(value - usual)
    if feature == "duration_ms":
        return value >= 3 * usual and value - usual >= 50
    if scale == "log":
        return gap >= 2 and (value >= 2 * usual or value <= usual / 2)
    if scale == "ratio":
        return gap >= 0.2
    spread = _quantile(values, 0.9) - _quantile(values, 0.1)
    return gap >= max(0.25 * abs(usual), spread, 1e-9)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _round(value: float) -> float:
    return round(value, 4) if isinstance(value, float) else value

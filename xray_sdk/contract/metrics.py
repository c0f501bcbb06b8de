"""Step conventions: what a step's metrics must look like for cross-run queries to work.

One function, `evaluate_metrics`, is the rule. The SDK calls it to raise early in strict
mode; the server calls it to refuse unusable values and to flag missing required metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .bounds import UNSTORABLE_TEXT
from .limits import DEFAULT_LIMITS, Limits
from .vocabulary import REDUCING_STEP_TYPES, REQUIRED_METRICS, STANDARD_METRICS

# Clients round ratios; anything closer than this to the exact ratio is consistent.
DROP_RATIO_TOLERANCE = 1e-3

# Recorded when a step that does not reduce its candidates sends a drop ratio.
NOT_APPLICABLE_DROP_RATIO = "not_applicable:drop_ratio"

METRIC_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class MetricsVerdict:
    """The outcome of checking one step's metrics against the contract.

    - `metrics`: the usable metrics, with `drop_ratio` derived when only the counts were given;
    - `errors`: metric name -> why its value is unusable (a step with errors must be fixed);
    - `violations`: `missing_metric:<name>` for each metric the step type requires but lacks, and
      `not_applicable:drop_ratio` for a drop ratio on a step that does not reduce its candidates
      (the value is left out, the step kept).
    """

    __slots__ = ("metrics", "errors", "violations")

    def __init__(self) -> None:
        self.metrics: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.violations: list[str] = []


def derive_drop_ratio(candidates_in: int, candidates_out: int) -> float | None:
    """The share of candidates a step removed; None when it had none to remove (an empty step
    dropped nothing, and "dropped 0%" would hide that it saw nothing)."""
    if candidates_in <= 0:
        return None
    return 1.0 - candidates_out / candidates_in


def missing_metric(name: str) -> str:
    """The violation code recorded when a required metric is absent."""
    return f"missing_metric:{name}"


UNKNOWN_STEP_TYPE = "unknown_step_type"


def unknown_step_type(given: str) -> str:
    """The violation code of a step whose type was none of the fixed ones (it is stored as
    `custom`, so that it still lands, and this says what was meant)."""
    return f"{UNKNOWN_STEP_TYPE}:{given}"


def evaluate_metrics(
    step_type: str, metrics: Mapping[str, Any] | None, limits: Limits = DEFAULT_LIMITS
) -> MetricsVerdict:
    """Check `metrics` for a step of `step_type`: types, bounds, consistency, required names."""
    verdict = MetricsVerdict()
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, Mapping):
        verdict.errors["metrics"] = "must be an object of metric name to number, string or boolean"
        return verdict
    items = list(metrics.items())
    if len(items) > limits.max_metrics:
        # Keep the standard metrics and the first others: they are what cross-run queries use.
        items.sort(key=lambda kv: kv[0] not in STANDARD_METRICS)
        verdict.errors["metrics"] = (
            f"has {len(items)} entries; only the first {limits.max_metrics} (standard metrics first) are kept"
        )
        items = items[: limits.max_metrics]
    usable = verdict.metrics
    for name, value in items:
        if _plainly_valid(name, value, limits):
            usable[name] = value
            continue
        problem = _check_metric(name, value, limits)
        if problem:
            verdict.errors[str(name)[: limits.max_metric_key_chars]] = problem
        elif value is not None:
            usable[name] = value
    _check_counts(verdict, step_type)
    empty = verdict.metrics.get("candidates_in") == 0
    for name in REQUIRED_METRICS.get(step_type, ()):
        if name == "drop_ratio" and empty:
            continue  # an empty step has no drop ratio to give
        if name not in verdict.metrics and name not in verdict.errors:
            verdict.violations.append(missing_metric(name))
    return verdict


def check_rejections(
    rejections: Any, candidates_in: Any, candidates_out: Any, limits: Limits = DEFAULT_LIMITS
) -> str | None:
    """Why a step's rejection counts (reason -> count) are unusable, or None. They may not
    count more rejections than the step dropped."""
    if not isinstance(rejections, Mapping):
        return "must be an object of reason to count"
    if len(rejections) > limits.max_reasons + 1:
        return (
            f"has {len(rejections)} reasons; send the {limits.max_reasons} most frequent and fold the rest into 'other'"
        )
    total = 0
    for reason, count in rejections.items():
        if (
            not isinstance(reason, str)
            or not 0 < len(reason) <= limits.max_reason_chars
            or UNSTORABLE_TEXT.search(reason)
        ):
            return f"reasons are 1 to {limits.max_reason_chars} printable characters"
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= limits.max_count:
            return f"the count of {reason!r} must be a whole number of candidates"
        total += count
    if isinstance(candidates_in, int) and isinstance(candidates_out, int) and total > candidates_in - candidates_out:
        return f"count {total} rejections but candidates_in - candidates_out is {candidates_in - candidates_out}"
    return None


def _plainly_valid(name: Any, value: Any, limits: Limits) -> bool:
    """The common case, decided without the full check: a known name and an ordinary value.
    False means "look closer", not "invalid"."""
    if name not in _VALID_NAMES:
        return False
    kind = type(value)
    expected = STANDARD_METRICS.get(name)
    if expected is None:
        return (
            (kind is int and -limits.max_count <= value <= limits.max_count)
            or kind is bool
            or (kind is float and value - value == 0.0)
            or (kind is str and len(value) <= 64 and value.isprintable())
        )
    if expected is int:
        return kind is int and 0 <= value <= limits.max_count
    if expected is float:
        return (kind is float or kind is int) and 0.0 <= value <= 1.0
    return kind is str and 0 < len(value) <= 64 and value.isprintable() and not value.isspace()


# Names already found valid: the same few metric names recur on every step of a pipeline.
_VALID_NAMES: set[str] = set(STANDARD_METRICS)


def _name_problem(name: Any, limits: Limits) -> str | None:
    if name in _VALID_NAMES and len(name) <= limits.max_metric_key_chars:
        return None
    if not isinstance(name, str) or not METRIC_KEY_PATTERN.fullmatch(name):
        return "metric names are letters, digits, '_', '.', '-', starting with a letter or '_'"
    if len(name) > limits.max_metric_key_chars:
        return f"metric names are at most {limits.max_metric_key_chars} characters"
    if len(_VALID_NAMES) < 4096:
        _VALID_NAMES.add(name)
    return None


def _check_metric(name: Any, value: Any, limits: Limits) -> str | None:
    problem = _name_problem(name, limits)
    if problem:
        return problem
    if value is None:
        return None
    expected = STANDARD_METRICS.get(name)
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number of candidates"
        if not 0 <= value <= limits.max_count:
            return f"must be between 0 and {limits.max_count}"
        return None
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            return "must be a finite number"
        if name == "drop_ratio" and not 0.0 <= value <= 1.0:
            return "must be between 0 and 1 (the share of candidates removed)"
        if name == "temperature" and value < 0:
            return "must not be negative"
        return None
    if expected is str:
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string (the model's name)"
        if len(value) > limits.max_metric_text_chars:
            return f"must be at most {limits.max_metric_text_chars} characters"
        return _text_problem(value)
    return _check_custom_metric(value, limits)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _text_problem(text: str) -> str | None:
    if UNSTORABLE_TEXT.search(text):
        return "must not contain NUL characters or unpaired surrogates"
    return None


def _check_custom_metric(value: Any, limits: Limits) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (NaN and infinities cannot be compared across runs)"
    if isinstance(value, str):
        if len(value) > limits.max_metric_text_chars:
            return f"must be at most {limits.max_metric_text_chars} characters; put long text in `why` or an artifact"
        return _text_problem(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limits.max_count:
        return f"must be between -{limits.max_count} and {limits.max_count}"
    if isinstance(value, (bool, int, float)):
        return None
    return "must be a number, a string or a boolean; flatten structures into several metrics"


def _check_counts(verdict: MetricsVerdict, step_type: str) -> None:
    """Make candidates_in / candidates_out / drop_ratio agree, deriving the ratio if absent; only
    steps that reduce their candidates have a ratio."""
    m = verdict.metrics
    if step_type not in REDUCING_STEP_TYPES:
        if "drop_ratio" in m:
            del m["drop_ratio"]
            verdict.violations.append(NOT_APPLICABLE_DROP_RATIO)
        return
    cin, cout = m.get("candidates_in"), m.get("candidates_out")
    if cin is None or cout is None:
        return
    if cout > cin:
        verdict.errors["candidates_out"] = (
            f"is {cout} but candidates_in is {cin}: a step cannot output more candidates than it received"
        )
        del m["candidates_out"]  # `metrics` holds only usable values
        return
    expected = derive_drop_ratio(cin, cout)
    given = m.get("drop_ratio")
    if expected is None:
        if given is not None:
            del m["drop_ratio"]  # 0 in, 0 out: nothing was dropped, and no ratio says so
        return
    if given is not None and abs(given - expected) > DROP_RATIO_TOLERANCE:
        verdict.errors["drop_ratio"] = (
            f"is {given} but candidates_in={cin} and candidates_out={cout} give {expected:.4f}; "
            "send the counts and let X-Ray derive the ratio"
        )
    if given is None or "drop_ratio" in verdict.errors:
        m["drop_ratio"] = expected

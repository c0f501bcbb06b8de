"""Patterns: what the bad runs of a window have in common, and since when.

For an attribute value v (a run tag, a top-level metadata scalar, a categorical metric of a step,
the run's status), with a bad runs having v, b other runs having v, c bad runs without it and d
other runs without it (after MacroBase, Bailis et al., SIGMOD 2017):

- support = a / (a + c): the share of the bad runs v explains;
- precision = a / (a + b): the share of the runs with v that are bad;
- risk ratio = precision / (c / (c + d)): how much likelier a run with v is to be bad;
- p-value: the one-sided Fisher exact test, times the number of values and pairs tested
  (Bonferroni), so a window of random failures shows nothing by chance.

A value is listed when it is significant (corrected p at most `thresholds.ALPHA`), explains at least
`min_support` of the bad runs, and at least doubles the risk. A pair of values is listed only
when its precision beats the better of its parts by `thresholds.MIN_PAIR_GAIN`: two attributes together,
not one attribute and a bystander. Ranked by the harmonic mean of support and precision, the
simpler explanation first on a tie. Served at `GET /api/v1/patterns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from xray_server.analysis import thresholds as t
from xray_server.analysis.significance import fisher_greater
from xray_server.errors import ValidationFailed
from xray_server.jsonio import iso_utc
from xray_server.query.patterns import (
    Attribute,
    AttributeCounts,
    Counts,
    attribute_counts,
    last_good_before,
    snapshot,
)
from xray_server.query.steps import check_step_filters
from xray_server.query.views import check_window, iso
from xray_server.schemas.queries import PatternQuery, StepFilters
from xray_server.storage.pool import Database

DEFAULT_WINDOW = timedelta(days=7)
# Bucket sizes for the timeline, the smallest that cuts the window into at most MAX_BUCKETS.
BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 48


def find_patterns(db: Database, q: PatternQuery) -> dict[str, Any]:
    """The attribute values, and pairs of them, that explain the bad runs of `q`'s window."""
    until = q.until or datetime.now(UTC)
    since = q.since or until - DEFAULT_WINDOW
    check_window(since, until)
    check_step_filters(q)
    _check_predicate(q)
    # One snapshot for every statement of the request (`until` above is fixed once too): the counts
    # and the timeline's last good run are of the same runs, however many arrive meanwhile.
    with snapshot(db) as conn:
        counts = attribute_counts(conn, q, since, until, bucket_seconds(since, until))
        tested = counts.values_tested + math.comb(counts.pair_candidates, 2)
        found = _found(counts, tested, q.min_support)
        timeline = _timeline(conn, q, since, counts, found[0] if found else None)
    return {
        "pipeline": q.pipeline,
        "since": iso_utc(since),
        "until": iso_utc(until),
        "runs": counts.runs,
        "bad_runs": counts.bad_runs,
        "unjudged": counts.unjudged,
        "good_runs_are": _good_runs_are(q),
        "tested": tested,
        "patterns": [p.public() for p in found[: q.limit]],
        "timeline": timeline,
    }


def _good_runs_are(q: PatternQuery) -> str:
    """Which runs a pattern's bad runs are held against, in words."""
    if q.good_label is not None:
        return f"labelled {q.good_label}"
    if q.value_below is not None:
        return f"judged {q.value_below:g} or more"
    return "every run that is not bad"


def _found(counts: AttributeCounts, tested: int, min_support: float) -> list[Pattern]:
    """The significant values, and the pairs that beat both their parts, best first."""
    singles = {c.parts[0]: scored(c, counts.runs, counts.bad_runs, tested) for c in counts.singles}
    found = [s for s in singles.values() if s.significant(min_support)]
    for pair_counts in counts.pairs:
        pair = scored(pair_counts, counts.runs, counts.bad_runs, tested)
        if pair.significant(min_support) and all(
            pair.precision >= singles[part].precision + t.MIN_PAIR_GAIN for part in pair.parts
        ):
            found.append(pair)
    found.sort(key=Pattern.rank)
    return found


def _check_predicate(q: PatternQuery) -> None:
    step_filters = [getattr(q, f.name) for f in fields(StepFilters)]
    judged = q.label is not None or q.value_below is not None or bool(q.outcome)
    if not any(f not in (None, []) for f in step_filters) and q.run_status is None and not judged:
        raise ValidationFailed(
            {
                "predicate": [
                    "say which runs are bad: step filters (step_type, name, min_drop_ratio, reason, ...), run_status, "
                    "outcome, label or value_below"
                ]
            }
        )


def attribute_name(attribute: Attribute) -> str:
    """`tags.app_version`, `metadata.region`, `steps.generate_keywords.model`, `status`."""
    kind, step, key, _ = attribute
    if kind == "status":
        return "status"
    return f"steps.{step}.{key}" if kind == "steps" else f"{kind}.{key}"


@dataclass(frozen=True)
class Pattern:
    """An attribute value (or a pair) against the window's bad runs: its 2x2 table and what it says."""

    parts: list[Attribute]
    counts: Counts
    bad: int  # bad runs with it
    other: int  # other runs with it
    support: float  # the share of the bad runs it explains
    precision: float  # the share of the runs with it that are bad
    risk_ratio: float  # how much likelier a run with it is to be bad (inf: no bad run lacks it)
    p_value: float  # one-sided Fisher, Bonferroni-corrected
    # The ranking score: the harmonic mean of support and precision, in [0, 1].
    score: float

    def significant(self, min_support: float) -> bool:
        return self.p_value <= t.ALPHA and self.support >= min_support and self.risk_ratio >= t.MIN_RISK_RATIO

    def rank(self) -> tuple[Any, ...]:
        return -round(self.score, 6), len(self.parts), -self.bad, [attribute_name(a) + "=" + a[3] for a in self.parts]

    def public(self) -> dict[str, Any]:
        return {
            "attributes": {attribute_name(a): a[3] for a in self.parts},
            "bad": self.bad,
            "other": self.other,
            "support": round(self.support, 4),
            "precision": round(self.precision, 4),
            # None: no bad run lacks the pattern, so the ratio is unbounded.
            "risk_ratio": None if math.isinf(self.risk_ratio) else round(self.risk_ratio, 3),
            "p_value": float(f"{self.p_value:.3g}"),
        }


def scored(counts: Counts, runs: int, bad_runs: int, tested: int) -> Pattern:
    """The pattern of a value's (or pair's) counts among `runs` runs, `bad_runs` of them bad, with
    `tested` values and pairs tested in all."""
    a, b = counts.bad, counts.other
    c, d = bad_runs - a, (runs - bad_runs) - b
    # Counted in one snapshot, a value's runs are among the window's: anything else is a bug in
    # the counting (a 500, logged with this message), never a table to test.
    if not (a >= 0 and b >= 0 and a + b > 0 and c >= 0 and d >= 0):
        raise RuntimeError(
            f"inconsistent pattern counts for {[attribute_name(p) + '=' + p[3] for p in counts.parts]}: "
            f"{a} bad and {b} other runs have it, of {bad_runs} bad runs among {runs} in the window"
        )
    precision = a / (a + b)
    rest = c / (c + d) if c + d else 0.0
    support = a / bad_runs if bad_runs else 0.0
    return Pattern(
        parts=counts.parts,
        counts=counts,
        bad=a,
        other=b,
        support=support,
        precision=precision,
        risk_ratio=precision / rest if rest else math.inf,
        p_value=min(1.0, fisher_greater(a, b, c, d) * tested),
        score=2 * support * precision / (support + precision) if support + precision else 0.0,
    )


def bucket_seconds(since: datetime, until: datetime) -> int:
    """The smallest bucket that cuts the window into at most MAX_BUCKETS."""
    span = (until - since).total_seconds()
    return next((b for b in BUCKETS if span / b <= MAX_BUCKETS), BUCKETS[-1])


def _timeline(
    conn: psycopg.Connection, q: PatternQuery, since: datetime, counts: AttributeCounts, top: Pattern | None
) -> dict[str, Any]:
    size = counts.bucket_seconds

    def start(bucket: int) -> datetime:
        return datetime.fromtimestamp(bucket * size, UTC)

    window = sorted(counts.buckets.buckets.items())
    timeline: dict[str, Any] = {
        "first_bad": iso(min((b.first_bad for _, b in window if b.first_bad is not None), default=None)),
        "last_bad": iso(max((b.last_bad for _, b in window if b.last_bad is not None), default=None)),
        "bucket_seconds": size,
        "buckets": [
            {"start": iso_utc(start(k)), "runs": b.runs, "bad": b.bad, "bad_share": round(b.bad / b.runs, 4)}
            for k, b in window
        ],
        "pattern": None,
    }
    if top is not None:
        timeline["pattern"] = _pattern_timeline(conn, q, top.counts, start, since)
    return timeline


def _pattern_timeline(
    conn: psycopg.Connection, q: PatternQuery, counts: Counts, start: Any, since: datetime
) -> dict[str, Any]:
    """When runs with the pattern went bad: their first bad run, and the last good one before it
    (from the buckets before; inside the first bad run's bucket, asked of PostgreSQL, never before
    the window)."""
    buckets = sorted(counts.buckets.items())
    first_bucket, first_bad = min(
        ((k, b.first_bad) for k, b in buckets if b.first_bad is not None), key=lambda kb: kb[1]
    )
    earlier = [b.last_good for k, b in buckets if k < first_bucket and b.last_good is not None]
    inside = last_good_before(conn, q, counts.parts, max(start(first_bucket), since), first_bad)
    last_good = max([*earlier, *([inside] if inside else [])], default=None)
    return {
        "attributes": {attribute_name(a): a[3] for a in counts.parts},
        "first_bad": iso_utc(first_bad),
        "last_good_before": iso(last_good),
        "buckets": [{"start": iso_utc(start(k)), "runs": b.runs, "bad": b.bad} for k, b in buckets],
    }

"""Digit triage: route incoming handwritten digits to a class, checked against similar past cases.

The data is scikit-learn's bundled `load_digits` (1,797 8x8 images of the digits 0 to 9, pixels on
a 0 to 16 scale), split once, seeded, into a reference set (the past cases, whose labels the model
was trained on) and a pool of incoming cases. Each incoming case arrives through a channel: most
from the scanner, on the model's own 0 to 16 scale; some from a phone app, as 8-bit frames (0 to
255) that `prepare` must bring back to the model's scale; some by fax, black and white only.

A run has five steps. `prepare` (custom) puts the pixels on the model's scale; `classify` (rank)
keeps the model's three most probable classes; `neighbours` (search) finds the 15 nearest
reference cases; `agree` (filter) keeps the classes that are probable enough and that enough of
the neighbours share; `route` (select) answers the most probable class kept, or sends the case to
manual review (no answer, which counts as wrong) when none is.

A few reference cases are still pending review: they are indexed (their images are known) but
have no label yet (None). Two of the planted bugs are careless handling of exactly that.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import xray_sdk

from .harness import Bug, Outcome, record

SEED = 20240611
# The share of the data held back as incoming cases; the rest is the reference set.
POOL_SHARE = 0.4
# The share of reference cases still pending review (indexed, not yet labelled).
PENDING_SHARE = 0.015
MODEL_VERSION = "digits-lr-3"
# The model's pixel scale: the scanner's.
FULL_INK = 16
# Phone frames are 8-bit.
PHONE_FULL = 255
# A prepared pixel at or above this is ink (for the `ink_share` metric and the fax's black and white).
INK = 8
# Channels by share of cases, in percent, from the case's index in the data.
CHANNELS = (("scanner", 60), ("phone", 22), ("fax", 18))
_CHANNEL_BY_SLOT = tuple(channel for channel, share in CHANNELS for _ in range(share))
TOP = 3
NEIGHBOURS = 15
# A class is kept only if at least this many of the neighbours carry it...
MIN_SUPPORT = 5
# ...and the model gives it at least this probability.
CONFIDENCE_FLOOR = 0.2


@dataclass(frozen=True)
class DigitCase:
    """An incoming case: the image as its channel delivered it, and its true class."""

    case_id: str
    channel: str
    # 64 pixels, row by row, on the channel's own scale (0-255 for the phone, 0-16 otherwise).
    pixels: tuple[int, ...]
    label: int


@dataclass(frozen=True)
class _Data:
    model: Pipeline
    index: NearestNeighbors
    # The reference cases' labels in the index's order; None while a case is pending review.
    labels: tuple[int | None, ...]
    pool: tuple[DigitCase, ...]


def _channel(index: int) -> str:
    """A case's channel, fixed by its index in the data (a multiplicative hash spreads the indices)."""
    return _CHANNEL_BY_SLOT[index * 2654435761 % 2**32 % len(_CHANNEL_BY_SLOT)]


def _as_delivered(image: np.ndarray, channel: str) -> tuple[int, ...]:
    """The image as its channel delivers it."""
    if channel == "phone":
        return tuple(int(v) for v in np.rint(image * PHONE_FULL / FULL_INK))
    if channel == "fax":
        return tuple(FULL_INK if v >= INK else 0 for v in image)
    return tuple(int(v) for v in image)


@functools.cache
def _data() -> _Data:
    """The split, the model and the reference index: built once per process, always the same."""
    digits = load_digits()
    indices = np.arange(len(digits.target))
    ref_idx, pool_idx = train_test_split(indices, test_size=POOL_SHARE, random_state=SEED, stratify=digits.target)
    ref_x, ref_y = digits.data[ref_idx], digits.target[ref_idx]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(ref_x, ref_y)
    # A tree answers one query on one thread; the brute search's OpenMP threads stalled single queries for
    # ~100 ms whenever other processes held the cores.
    index = NearestNeighbors(n_neighbors=NEIGHBOURS, algorithm="kd_tree").fit(ref_x)
    pending = np.random.default_rng(SEED).random(len(ref_y)) < PENDING_SHARE
    labels = tuple(None if p else int(y) for p, y in zip(pending, ref_y, strict=True))
    pool = []
    for i in pool_idx:
        channel = _channel(int(i))
        pool.append(DigitCase(f"digit-{i:04d}", channel, _as_delivered(digits.data[i], channel), int(digits.target[i])))
    return _Data(model, index, labels, tuple(pool))


class DigitTriage:
    """Routes handwritten digits by a logistic regression, checked by the nearest reference cases."""

    name: str = "digit_triage"
    description: str = (
        "Routes incoming handwritten digits (scikit-learn's bundled load_digits) from three channels to a class: "
        "a StandardScaler + LogisticRegression ranks the classes, NearestNeighbors finds the 15 most similar "
        "reference cases, and a class is answered only if it is probable enough and the neighbours agree."
    )
    bugs: tuple[Bug, ...] = (
        Bug(
            "phone_unit_scale",
            "prepare",
            "segment_model",
            "phone frames (0-255) are normalised to 0-1, the usual convention for 8-bit images, instead of the 0-16 "
            "scale the model and the reference set are on",
        ),
        Bug(
            "pending_filter_drops_zero",
            "agree",
            "filter_rule",
            "the neighbour vote skips pending references with a truthiness test, which also skips every neighbour "
            "labelled 0, so the class 0 never has neighbour support",
        ),
        Bug(
            "pending_label_sort",
            "neighbours",
            "error_path",
            "the neighbours' classes are listed by sorting a set that holds None when a neighbour is pending "
            "review, which raises TypeError",
        ),
    )

    def cases(self, rng: random.Random, n: int) -> list[DigitCase]:
        """`n` incoming cases, distinct until the pool is exhausted."""
        pool = _data().pool
        picks = rng.sample(range(len(pool)), min(n, len(pool)))
        picks += [rng.randrange(len(pool)) for _ in range(n - len(picks))]
        return [pool[i] for i in picks]

    def run(self, client: xray_sdk.Client, pipeline: str, case: DigitCase, bugs: frozenset[str]) -> Outcome:
        """Route `case`; its answer is a class, or None when it goes to manual review or a step fails."""
        tags = {"channel": case.channel}
        return record(client, pipeline, case.case_id, tags, lambda run: self._route(run, case, bugs), "label")

    def correct(self, case: DigitCase, answer: Any) -> bool:
        """Right only if the answer is the true class: manual review (None) is a miss too."""
        return bool(answer == case.label)

    def _route(self, run: xray_sdk.Run, case: DigitCase, bugs: frozenset[str]) -> int | None:
        data = _data()
        with run.step("prepare", "custom", input={"case": case.case_id, "channel": case.channel}) as step:
            x = np.asarray(case.pixels, dtype=float)
            if case.channel == "phone":
                x = x / PHONE_FULL if "phone_unit_scale" in bugs else x * FULL_INK / PHONE_FULL
            # The scanner is on the model's scale already, and the fax's black and white (0 or 16) is too.
            step.metrics(pixel_max=float(x.max()), ink_share=round(float((x >= INK).mean()), 4))
        x = x.reshape(1, -1)

        with run.step("classify", "rank") as step:
            proba = data.model.predict_proba(x)[0]
            order = np.argsort(-proba, kind="stable")[:TOP]
            top = [(int(data.model.classes_[i]), float(proba[i])) for i in order]
            step.candidates(len(proba), len(top)).metrics(
                score_max=round(top[0][1], 4), score_gap=round(top[0][1] - top[1][1], 4), model_version=MODEL_VERSION
            )
            step.output([{"label": label, "probability": round(p, 4)} for label, p in top])

        with run.step("neighbours", "search") as step:
            distances, found = data.index.kneighbors(x)
            labels = [data.labels[i] for i in found[0]]
            if "pending_label_sort" in bugs:
                classes = sorted(set(labels))
            else:
                classes = sorted({label for label in labels if label is not None})
            step.candidates(1, len(labels)).metrics(
                limit=NEIGHBOURS,
                distance_min=round(float(distances[0, 0]), 3),
                pending=labels.count(None),
                neighbour_classes=len(classes),
            )
            step.output({"classes": classes})

        with run.step("agree", "filter", id_field="label") as step:
            # Pending neighbours carry no label, so they cannot vote.
            if "pending_filter_drops_zero" in bugs:
                votes = Counter(label for label in labels if label)
            else:
                votes = Counter(label for label in labels if label is not None)
            kept: list[dict[str, Any]] = []
            rejected: list[tuple[dict[str, Any], str]] = []
            for label, p in top:
                candidate = {"label": label, "probability": round(p, 4), "support": votes[label]}
                if p < CONFIDENCE_FLOOR:
                    rejected.append((candidate, "low_confidence"))
                elif votes[label] < MIN_SUPPORT:
                    rejected.append((candidate, "no_neighbour_support"))
                else:
                    kept.append(candidate)
            step.decide(kept, rejected)

        with run.step("route", "select") as step:
            # `kept` is in the model's order, so its first class is the most probable one kept.
            answer = kept[0]["label"] if kept else None
            step.candidates(len(kept), 0 if answer is None else 1).metrics(manual_review=answer is None)
            step.output({"label": answer})
        return answer

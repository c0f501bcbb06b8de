"""Serialisation never raises, and what it produces is JSON the server can store."""

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from pathlib import Path

from xray_sdk.serialize import RawJson, dumps, encode, to_json_safe
from xray_sdk.summaries import sample, summarize


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Candidate:
    asin: str
    category: str
    score: float


class FakeArray:  # the numpy protocol, without numpy
    def tolist(self):
        return [1, 2, 3]


class FakeScalar:
    def item(self):
        return 0.5


class Hostile:
    def __repr__(self):
        raise RuntimeError("no")

    def __getattr__(self, name):
        raise RuntimeError("no attributes either")


def roundtrip(value):
    data = dumps(value)
    assert b"\\u0000" not in data
    return json.loads(data)


def test_common_types_become_json():
    value = {
        "when": dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 11, 25),
        "id": uuid.UUID(int=7),
        "price": decimal.Decimal("9.99"),
        "tags": {"b", "a"},
        "raw": b"abc",
        "colour": Colour.RED,
        "candidate": Candidate("B01", "phone_case", 0.9),
        "array": FakeArray(),
        "scalar": FakeScalar(),
        "path": Path("/tmp/x"),
        "tuple": (1, 2),
    }
    assert roundtrip(value) == {
        "when": "2026-11-25T10:00:00+00:00",
        "day": "2026-11-25",
        "id": str(uuid.UUID(int=7)),
        "price": 9.99,
        "tags": ["a", "b"],
        "raw": "abc",
        "colour": "red",
        "candidate": {"asin": "B01", "category": "phone_case", "score": 0.9},
        "array": [1, 2, 3],
        "scalar": 0.5,
        "path": "/tmp/x",
        "tuple": [1, 2],
    }


def test_values_json_or_postgresql_refuse_are_made_safe():
    loop = []
    loop.append(loop)
    value = {
        "nan": math.nan,
        "inf": -math.inf,
        "nul": "a\x00b",
        "surrogate": "\ud800",
        "loop": loop,
        "bytes": b"\xff\xfe",
        3: "int key",
        "hostile": Hostile(),
    }
    out = roundtrip(value)
    assert out["nan"] == "NaN" and out["inf"] == "-Infinity"
    assert out["nul"] == "a\ufffdb" and out["surrogate"] == "\ufffd"
    assert out["loop"] == ["<cycle>"]
    assert out["bytes"].startswith("base64:")
    assert out["3"] == "int key"
    assert out["hostile"].startswith("<unrepresentable")


def test_deep_nesting_is_cut_not_crashed():
    deep = current = []
    for _ in range(5000):
        current.append([])
        current = current[0]
    out = roundtrip(deep)
    depth = 0
    while isinstance(out, list) and out:
        out, depth = out[0], depth + 1
    assert depth <= 33 and out == "<max depth>"


def test_long_reprs_are_truncated():
    class Wordy:
        def __repr__(self):
            return "w" * 10_000

    assert len(to_json_safe(Wordy())) == 200


def test_raw_fragments_are_spliced_in_as_they_are():
    assert encode({"a": RawJson(b'{"x":1}'), "b": [RawJson(b"[2]")], "c": 3}) == b'{"a":{"x":1},"b":[[2]],"c":3}'


def test_summarize_counts_examples_and_distributions():
    items = [Candidate(f"B{i}", "phone_case" if i % 4 else "laptop_stand", i / 10) for i in range(20)]
    summary = summarize(items, fields=["category"], examples=2, top=1)
    assert summary["count"] == 20
    assert [e["asin"] for e in summary["examples"]] == ["B0", "B1"]
    assert summary["distributions"] == {"category": {"phone_case": 15, "_other": 5}}


def test_samples_are_reproducible_and_keep_order():
    items = list(range(1000))
    first, again = sample(items, 10, seed="run-1"), sample(items, 10, seed="run-1")
    assert first == again == sorted(first)
    assert sample(items, 10, seed="run-2") != first
    assert sample(items[:5], 10) == items[:5]

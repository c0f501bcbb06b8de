"""Turn anything a pipeline hands us into JSON, without ever raising.

The fast path is `json.dumps` with a `default` hook for common types; anything it refuses
(NaN, cycles, odd objects, NUL characters, lone surrogates) goes through `to_json_safe`,
which builds a clean copy: datetimes become ISO strings, sets lists, numpy values their
Python equivalents, and unknown objects a truncated `repr`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import itertools
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from .contract.bounds import UNSTORABLE_TEXT

MAX_DEPTH = 32
MAX_REPR_CHARS = 200
MAX_ITEMS = 10_000  # of a generator or view: more is not a summary


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON for `value`; never raises."""
    try:
        data = _fast_encode(value).encode("utf-8")
        if b"\\u0000" not in data:
            return data
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        pass
    except Exception:  # a hostile __str__/__iter__ in a `default` conversion
        pass
    try:
        return _SAFE.encode(to_json_safe(value)).encode("utf-8")
    except Exception:
        return _SAFE.encode(_repr(value)).encode("utf-8")


def to_json_safe(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of `value` that `json.dumps` accepts and PostgreSQL can store; never raises."""
    try:
        return _safe(value, max_depth, set())
    except Exception:
        return _repr(value)


def _safe(value: Any, depth: int, path: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # JSON (and Python's own int-to-text) stops at a few thousand digits.
        return int(value) if value.bit_length() <= 1000 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return clean_text(value)
    if depth <= 0:
        return "<max depth>"
    converted = _default(value, strict=False)
    if converted is not value:
        return _safe(converted, depth - 1, path)
    if id(value) in path:
        return "<cycle>"
    path.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {_key(k): _safe(v, depth - 1, path) for k, v in list(value.items())}
        if isinstance(value, (list, tuple)):
            return [_safe(v, depth - 1, path) for v in value]
    finally:
        path.discard(id(value))
    return _repr(value)


def _default(value: Any, strict: bool = True) -> Any:
    """One step of conversion for a non-JSON type; `json.dumps` recurses into the result."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return dict(value)
    if isinstance(value, (range, type({}.keys()), type({}.values()), type({}.items()))) or inspect.isgenerator(value):
        return list(itertools.islice(value, MAX_ITEMS))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw[:4096]).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    for method in ("model_dump", "tolist", "item"):  # pydantic, numpy arrays, numpy scalars
        try:
            convert = getattr(value, method, None)
            if callable(convert) and not isinstance(value, type):
                return convert()
        except Exception:
            break
    if strict:
        return _repr(value)
    return value


# Built once: json.dumps with options builds a new encoder on every call.
_FAST = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)
_SAFE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _c_encoder() -> Any:
    """CPython's C encoder, made once (JSONEncoder.encode remakes it per call: a third of the
    cost of a small event). No cycle markers: a cycle raises and takes the safe path."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder = make(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
        if "".join(encoder({"a": [1, 2.5, "é"]}, 0)) != '{"a":[1,2.5,"é"]}':
            return None
        return encoder
    except Exception:
        return None


_C_ENCODER = _c_encoder()


def _fast_encode(value: Any) -> str:
    if _C_ENCODER is None:
        return _FAST.encode(value)
    if isinstance(value, str):  # the C encoder handles containers; a bare string needs quoting
        return _FAST.encode(value)
    return "".join(_C_ENCODER(value, 0))


def _key(key: Any) -> str:
    if isinstance(key, str):
        return clean_text(key)
    converted = _safe(key, 1, set())
    return converted if isinstance(converted, str) else json.dumps(converted)


def clean_text(text: str) -> str:
    """`text` with NUL characters and lone surrogates replaced by U+FFFD."""
    if UNSTORABLE_TEXT.search(text) is None:
        return text
    return UNSTORABLE_TEXT.sub("\ufffd", text)


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
    text = clean_text(text)
    return text if len(text) <= MAX_REPR_CHARS else text[: MAX_REPR_CHARS - 1] + "…"


class RawJson(bytes):
    """JSON encoded once already (to measure it against a limit); `encode` splices it in."""


def encode(value: Any, depth: int = 3) -> bytes:
    """Like `dumps`, but `RawJson` fragments within `depth` levels of dicts and lists are
    used as they are (an event's artifact payloads sit at depth 3: event, list, artifact)."""
    if isinstance(value, RawJson):
        return bytes(value)
    if depth > 0 and isinstance(value, dict) and _has_raw(value.values(), depth):
        return b"{" + b",".join(dumps(_key(k)) + b":" + encode(v, depth - 1) for k, v in value.items()) + b"}"
    if depth > 0 and isinstance(value, list) and _has_raw(value, depth):
        return b"[" + b",".join(encode(v, depth - 1) for v in value) + b"]"
    return dumps(value)


def _has_raw(values: Any, depth: int) -> bool:
    for v in values:
        if isinstance(v, RawJson):
            return True
        if depth > 1 and isinstance(v, dict) and _has_raw(v.values(), depth - 1):
            return True
        if depth > 1 and isinstance(v, list) and _has_raw(v, depth - 1):
            return True
    return False

"""Reading requests: the JSON body (bounded, strict) and query strings (validated)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from flask import Request
from marshmallow import Schema, ValidationError

from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_server.errors import BadJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from xray_server.jsonio import NotFast, loads_fast


def read_json_body(request: Request, max_bytes: int = DEFAULT_LIMITS.max_body_bytes) -> Any:
    """The request's JSON body: `application/json`, optionally gzip, at most `max_bytes`
    once decompressed, strict UTF-8, and no NaN or Infinity (they are not JSON)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json (got {request.mimetype or 'no content type'})",
            {"fields": {"Content-Type": ["must be application/json"]}},
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw, max_bytes)
    elif encoding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Strict JSON from bytes, or a 400 that says what is wrong with it."""
    try:
        return loads_fast(raw)
    except NotFast:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadJson("the body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadJson(f"the body is not acceptable JSON: {str(exc)[:100]}") from None


def _refuse_constant(name: str) -> Any:
    raise BadJson(f"the body contains {name}, which is not JSON; send null or a finite number")


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    # Decompress at most max_bytes + 1 so that a gzip bomb costs us nothing.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise BadJson("the body is not valid gzip") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise _too_large(max_bytes)
    if not inflater.eof:
        raise BadJson("the gzip body is truncated")
    if inflater.unused_data:
        raise BadJson("the gzip body has data after its end; send one gzip member")
    return data


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than {max_bytes} bytes; send fewer events per batch",
        {"limit_bytes": max_bytes},
    )


def load_query(schema: Schema, args: Any, repeatable: frozenset[str] = frozenset()) -> Any:
    """Validate a query string into the schema's record; parameters may appear once unless
    listed in `repeatable`."""
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for key in args:
        given = args.getlist(key)
        if key in repeatable:
            values[key] = given
        elif len(given) > 1:
            problems[key] = ["may be given only once"]
        else:
            values[key] = given[0]
    try:
        loaded = schema.load(values)
    except ValidationError as exc:
        problems.update(exc.messages)  # type: ignore[arg-type]
        loaded = None
    if problems:
        raise ValidationFailed(
            {k: (["is not a known parameter"] if v == ["Unknown field."] else v) for k, v in problems.items()}
        )
    return loaded

"""Field types shared by the request schemas."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields

from xray_sdk.contract.bounds import UNSTORABLE_TEXT
from xray_sdk.contract.limits import DEFAULT_LIMITS
from xray_sdk.contract.tags import split_tag

# NUL or a lone surrogate would turn a bad request into a 500, so they are refused at the door.
_RELATIVE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def unstorable_text_problem(text: str) -> str | None:
    """Why PostgreSQL could not store `text`, or None if it can."""
    match = UNSTORABLE_TEXT.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character, which PostgreSQL cannot store"
    return "contains an unpaired UTF-16 surrogate, which is not valid Unicode"


def json_value_problem(value: Any, max_depth: int = DEFAULT_LIMITS.max_json_depth) -> str | None:
    """Why `value` cannot be stored as jsonb (depth, NUL, surrogates, NaN), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"is nested more than {max_depth} levels deep"
        if isinstance(item, str):
            problem = unstorable_text_problem(item)
            if problem:
                return problem
        elif isinstance(item, float) and not math.isfinite(item):
            return "contains NaN or an infinity, which JSON cannot represent"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = unstorable_text_problem(key)
                if problem:
                    return "has a key that " + problem
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


class Text(fields.String):
    """A string PostgreSQL can store."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = unstorable_text_problem(text)
        if problem:
            raise ValidationError(problem)
        return text


class JsonValue(fields.Raw):
    """Any JSON value that can be stored as jsonb: bounded depth, no NUL, no NaN."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        problem = json_value_problem(value)
        if problem:
            raise ValidationError(problem)
        return value


class Tags(fields.Dict):
    """Short string labels on a run, such as {"env": "prod", "category": "phone_cases"}."""

    def __init__(self, **kwargs: Any) -> None:
        limits = DEFAULT_LIMITS
        super().__init__(
            keys=Text(
                validate=lambda k: (
                    1 <= len(k) <= limits.max_tag_key_chars
                    or _fail(f"tag names are 1 to {limits.max_tag_key_chars} characters")
                )
            ),
            values=Text(
                validate=lambda v: (
                    len(v) <= limits.max_tag_value_chars
                    or _fail(f"tag values are at most {limits.max_tag_value_chars} characters")
                )
            ),
            validate=lambda d: len(d) <= limits.max_tags or _fail(f"at most {limits.max_tags} tags per run"),
            **kwargs,
        )


_MAX_SKEW = timedelta(seconds=DEFAULT_LIMITS.max_clock_skew_seconds)
_MAX_AGE = timedelta(days=DEFAULT_LIMITS.max_event_age_days)


class EventTime(fields.AwareDateTime):
    """An RFC 3339 timestamp with a zone, not absurdly far from the server's clock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        return self.check_moment(super()._deserialize(value, attr, data, **kwargs))

    def check_moment(self, moment: datetime) -> datetime:
        """`moment` if it has a zone and is within the accepted window of the server's clock."""
        if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
            raise self.make_error("invalid_awareness", awareness=self.AWARENESS, obj_type=self.OBJ_TYPE)
        now = datetime.now(UTC)
        if moment > now + _MAX_SKEW:
            raise ValidationError("is more than a day in the future: check the client's clock")
        if moment < now - _MAX_AGE:
            raise ValidationError(f"is more than {DEFAULT_LIMITS.max_event_age_days} days in the past")
        return moment


def parse_age(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` as a timedelta; ValueError for anything else or too large."""
    match = _RELATIVE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an age such as 30m, 24h, 7d or 2w")
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise ValueError(f"{text!r} is too large an age") from None


class TimeBound(fields.Field):
    """A query bound: RFC 3339 (`2026-11-25T10:00:00Z`) or an age such as `30m`, `24h`, `7d`."""

    default_error_messages = {"invalid": "must be an RFC 3339 time with a zone, or an age such as 30m, 24h, 7d"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if _RELATIVE.match(value.strip()):
            try:
                moment = datetime.now(UTC) - parse_age(value)
            except (ValueError, OverflowError):
                raise self.make_error("invalid") from None
            if moment.year < 1970:
                raise self.make_error("invalid")
            return moment
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise self.make_error("invalid") from None
        if moment.tzinfo is None or not 1970 <= moment.year <= 9000:
            raise self.make_error("invalid")
        return moment


class TagFilter(fields.Field):
    """`key:value` or `key=value`: runs whose tag `key` equals `value` (split at the first `:` or
    `=`; the value may itself contain either)."""

    default_error_messages = {"invalid": "must be key:value or key=value, such as app_version:4.2"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, str]:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            key, tag_value = split_tag(value)
        except ValueError:
            raise self.make_error("invalid") from None
        limits = DEFAULT_LIMITS
        if not 1 <= len(key) <= limits.max_tag_key_chars or len(tag_value) > limits.max_tag_value_chars:
            raise ValidationError(
                f"tag names are 1 to {limits.max_tag_key_chars} characters and values at most "
                f"{limits.max_tag_value_chars}"
            )
        for text in (key, tag_value):
            problem = unstorable_text_problem(text)
            if problem:
                raise ValidationError(problem)
        return key, tag_value


def _fail(message: str) -> bool:
    raise ValidationError(message)

"""A fast loader for plainly valid events, built from the marshmallow schemas themselves.

marshmallow costs about 100 µs an event, most of it in its per-field machinery, which made
validation the largest share of the server's ingest time (BENCHMARKS.md). Almost every event
an SDK sends is plainly valid: known keys, the usual JSON types, no nested artifact or error.
For those, `PlainLoader` applies the same fields' rules with less machinery: the same
validators, the same defaults, the same `JsonValue`/`Text` checks. Anything it is not sure of
(an unknown key, a wrong type, a failing validator, a nested schema) makes it give up, and the
caller loads the event with marshmallow, which then produces the result or the field errors.
So the schemas stay the one definition of a valid event; a property test checks that whatever
this loader accepts, marshmallow accepts with an identical result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.utils import missing

from xray_server.schemas.fields import EventTime, JsonValue, Text, json_value_problem, unstorable_text_problem


class NotPlain(Exception):
    """This value needs marshmallow: it may be invalid, or valid in a way this loader skips."""


Convert = Callable[[Any], Any]


def _uuid(value: Any) -> uuid.UUID:
    if type(value) is not str:
        raise NotPlain
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotPlain from None


def _string(value: Any) -> str:
    if type(value) is not str:
        raise NotPlain
    return value


def _text(value: Any) -> str:
    if type(value) is not str or unstorable_text_problem(value):
        raise NotPlain
    return value


def _strict_integer(value: Any) -> int:
    if type(value) is not int:  # bool is refused, as marshmallow's strict Integer does
        raise NotPlain
    return value


def _json_value(value: Any) -> Any:
    if json_value_problem(value):
        raise NotPlain
    return value


def _event_time(field: EventTime) -> Convert:
    def convert(value: Any) -> datetime:
        if type(value) is not str:
            raise NotPlain
        try:
            return field.check_moment(datetime.fromisoformat(value))
        except (ValueError, ValidationError):
            raise NotPlain from None

    return convert


def _plain_dict(field: fields.Dict) -> Convert | None:
    keys, values = field.key_field, field.value_field
    if type(keys) is not fields.String or keys.validators or type(values) is not fields.Raw or values.validators:
        return None
    values_may_be_null = values.allow_none

    def convert(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise NotPlain
        for key, item in value.items():
            if type(key) is not str or (item is None and not values_may_be_null):
                raise NotPlain
        return dict(value)

    return convert


def _empty_list(value: Any) -> list[Any]:
    if value != [] or type(value) is not list:
        raise NotPlain
    return []


def _refuse(value: Any) -> Any:
    raise NotPlain


def _converter(field: fields.Field) -> Convert:
    """The fast conversion for `field`'s type. A list takes only `[]` here, and a nested
    schema only null: both are rare in events and left to marshmallow."""
    if isinstance(field, EventTime):
        return _event_time(field)
    if isinstance(field, fields.UUID):
        return _uuid
    if isinstance(field, Text):
        return _text
    if type(field) is fields.String:
        return _string
    if type(field) is fields.Integer and field.strict:
        return _strict_integer
    if type(field) is JsonValue:
        return _json_value
    if type(field) is fields.Dict:
        return _plain_dict(field) or _refuse
    if type(field) is fields.List:
        return _empty_list
    return _refuse


def _with_validators(field: fields.Field, convert: Convert) -> Convert:
    validators = list(field.validators)
    if not validators:
        return convert

    def checked(value: Any) -> Any:
        result = convert(value)
        for validator in validators:
            try:
                if validator(result) is False:
                    raise NotPlain
            except ValidationError:
                raise NotPlain from None
        return result

    return checked


# Schema hooks this loader honours by construction: it takes artifacts only as `[]`, whose
# names are unique. Any other hook (pre_load, post_load, validates...) turns it off.
_HONOURED_HOOKS = {"validates_schema": {"_unique_artifact_names"}}


def supports(schema: Schema) -> bool:
    """Whether the fast loader can stand in for `schema`: unknown keys refused, no renamed
    field, no hook it does not honour. A schema that grows one falls back to marshmallow."""
    if schema.unknown != RAISE or any(f.data_key is not None for f in schema.load_fields.values()):
        return False
    return all({hook[0] for hook in hooks} <= _HONOURED_HOOKS.get(tag, set()) for tag, hooks in schema._hooks.items())


class PlainLoader:
    """Loads what `schema.load` would, for plain input; raises `NotPlain` for anything else."""

    def __init__(self, schema: Schema) -> None:
        self.enabled = supports(schema)
        self._allowed = frozenset(schema.load_fields) if self.enabled else frozenset()
        self._fields = [
            (name, field.required, field.allow_none, field.load_default, _with_validators(field, _converter(field)))
            for name, field in schema.load_fields.items()
        ]

    def load(self, raw: dict[str, Any]) -> dict[str, Any]:
        if not self.enabled or not self._allowed.issuperset(raw):
            raise NotPlain
        out: dict[str, Any] = {}
        for name, required, allow_none, default, convert in self._fields:
            if name not in raw:
                if required:
                    raise NotPlain
                if default is not missing:
                    out[name] = default() if callable(default) else default
                continue
            value = raw[name]
            if value is None:
                if not allow_none:
                    raise NotPlain
                out[name] = None
            else:
                out[name] = convert(value)
        return out

"""A fast loader for plainly valid events, built from the marshmallow schemas themselves.

marshmallow costs about 100 µs an event, most of it in its per-field machinery, which made
validation the largest share of the server's ingest time (BENCHMARKS.md). Almost every event
an SDK sends is plainly valid: known keys, the usual JSON types, no nested artifact or error.
For those, `PlainLoader` turns each schema into a msgspec Struct (typed structs validated in
compiled code): keys, types, lengths, ranges and choices are msgspec's; the checks it cannot
state (`EventTime`, `Text`, `JsonValue`, any other validator) run in Python after, as the
fields define them. Anything it is not sure of (an unknown key, a wrong type, a failing
validator, a nested schema) makes it give up, and the caller loads the event with marshmallow,
which then produces the result or the field errors. So the schemas stay the one definition of a
valid event, of the OpenAPI document and of the messages; a property test checks that whatever
this loader accepts, marshmallow accepts with an identical result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.utils import missing

from xray_server.schemas.fields import EventTime, JsonValue, Text, json_value_problem, unstorable_text_problem


class NotPlain(Exception):
    """This value needs marshmallow: it may be invalid, or valid in a way this loader skips."""


Convert = Callable[[Any], Any]


Check = Callable[[Any], Any]


def _text(value: str) -> str:
    if unstorable_text_problem(value):
        raise NotPlain
    return value


def _json_value(value: Any) -> Any:
    if json_value_problem(value):
        raise NotPlain
    return value


def _no_null_values(value: dict[str, Any]) -> dict[str, Any]:
    if None in value.values():
        raise NotPlain
    return value


def _event_time(field: EventTime) -> Check:
    def convert(value: str) -> datetime:
        try:
            return field.check_moment(datetime.fromisoformat(value))
        except (ValueError, ValidationError):
            raise NotPlain from None

    return convert


def _validated(validators: list[Any], check: Check | None) -> Check | None:
    """`check`, then the validators msgspec cannot state, as marshmallow runs them."""
    if not validators:
        return check

    def checked(value: Any) -> Any:
        result = check(value) if check else value
        for validator in validators:
            try:
                if validator(result) is False:
                    raise NotPlain
            except ValidationError:
                raise NotPlain from None
        return result

    return checked


def _constrained(kind: Any, field: fields.Field) -> tuple[Any, list[Any]]:
    """`kind` with the field's Length, Range and OneOf stated as msgspec constraints (checked in
    C, with the same inclusive bounds); the validators left over, to run in Python."""
    meta: dict[str, Any] = {}
    rest = []
    for validator in field.validators:
        if type(validator) is validate.Length and validator.equal is None and kind in (str, list[Any]):
            meta.update({"min_length": validator.min, "max_length": validator.max})
        elif type(validator) is validate.Range and kind is int:
            low, high = ("ge" if validator.min_inclusive else "gt"), ("le" if validator.max_inclusive else "lt")
            meta.update({low: validator.min, high: validator.max})
        elif type(validator) is validate.OneOf and kind is str and all(type(c) is str for c in validator.choices):
            kind = Literal[tuple(validator.choices)]
        else:
            rest.append(validator)
    meta = {k: v for k, v in meta.items() if v is not None}
    return (Annotated[kind, msgspec.Meta(**meta)] if meta else kind), rest


def _wire_type(field: fields.Field) -> tuple[Any, Check | None]:
    """The type msgspec checks `field`'s value against, and what Python checks after. A list
    takes only `[]` here, and a nested schema only null: both are rare in events and left to
    marshmallow, as is any field type this does not know."""
    if isinstance(field, EventTime):
        return str, _event_time(field)
    if isinstance(field, fields.UUID):
        return uuid.UUID, None
    if isinstance(field, Text):
        kind, rest = _constrained(str, field)
        return kind, _validated(rest, _text)
    if type(field) is fields.String:
        kind, rest = _constrained(str, field)
        return kind, _validated(rest, None)
    if type(field) is fields.Integer and field.strict:
        kind, rest = _constrained(int, field)
        return kind, _validated(rest, None)
    if type(field) is JsonValue:
        return Any, _validated(list(field.validators), _json_value)
    if type(field) is fields.Dict and _plain_dict(field):
        return dict[str, Any], _validated(
            list(field.validators), None if field.value_field.allow_none else _no_null_values
        )
    if type(field) is fields.List:
        return Annotated[list[Any], msgspec.Meta(max_length=0)], None
    return None, None  # only null, when the field allows it


def _plain_dict(field: fields.Dict) -> bool:
    keys, values = field.key_field, field.value_field
    return type(keys) is fields.String and not keys.validators and type(values) is fields.Raw and not values.validators


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
    """Loads what `schema.load` would, for plain input; raises `NotPlain` for anything else.

    The schema's fields become a msgspec Struct (`msgspec.defstruct`): keys, types, lengths,
    ranges and choices are checked in compiled code; what msgspec cannot state (a zone and a
    window on a time, storable text, a JSON value's depth) is checked in Python after."""

    def __init__(self, schema: Schema) -> None:
        self.enabled = supports(schema)
        self._checks: list[tuple[str, Check]] = []  # Python's part, on values that are not null
        self._may_be_unset: list[str] = []  # absent with no default: absent from the result too
        self._null_refused: list[str] = []  # where msgspec's type takes a null that marshmallow refuses
        struct_fields = []
        for name, field in schema.load_fields.items():
            kind, check = _wire_type(field)
            if not field.allow_none and (kind is None or kind is Any):
                self._null_refused.append(name)
            if field.allow_none and kind is not None and kind is not Any:
                kind = kind | None
            if field.required:
                struct_fields.append((name, kind))
            elif field.load_default is missing:
                struct_fields.append((name, kind | msgspec.UnsetType, msgspec.UNSET))
                self._may_be_unset.append(name)
            elif callable(field.load_default):
                struct_fields.append((name, kind, msgspec.field(default_factory=field.load_default)))
            else:
                struct_fields.append((name, kind, field.load_default))
            if check is not None:
                self._checks.append((name, check))
        struct_fields.sort(key=lambda f: len(f) > 2)  # msgspec wants the required fields first
        self._struct = msgspec.defstruct(
            f"Plain{type(schema).__name__}", struct_fields, forbid_unknown_fields=True, kw_only=True
        )

    def load(self, raw: dict[str, Any]) -> dict[str, Any]:
        if not self.enabled:
            raise NotPlain
        try:
            out = msgspec.structs.asdict(msgspec.convert(raw, self._struct))
        except Exception:  # msgspec's ValidationError, or text it cannot encode: marshmallow will say
            raise NotPlain from None
        for name in self._may_be_unset:
            if out[name] is msgspec.UNSET:
                del out[name]
        for name in self._null_refused:
            if name in out and out[name] is None:
                raise NotPlain
        for name, check in self._checks:
            value = out.get(name)
            if value is not None:
                out[name] = check(value)
        return out

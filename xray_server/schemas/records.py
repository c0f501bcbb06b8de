"""One definition per shape: a dataclass whose fields carry their marshmallow field, and the
schema that loads it, generated from it. The dataclass is what the code reads (typed
attributes); the schema validates the wire and documents it in OpenAPI; neither repeats the other."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from marshmallow import Schema, fields, post_load

T = TypeVar("T")
_FIELD = "marshmallow"


def param(
    field: fields.Field,
    *,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field read from the wire through `field`; its default is the wire's default."""
    if required:
        return dataclasses.field(metadata={_FIELD: field})
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={_FIELD: field})
    return dataclasses.field(default=default, metadata={_FIELD: field})


def schema_for(record: type[T], *, name: str | None = None) -> type[Schema]:
    """The schema whose `load` returns a `record`, built from the record's own fields."""
    declared: dict[str, Any] = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        wire = copy.copy(f.metadata[_FIELD])
        factory = f.default_factory
        if factory is not dataclasses.MISSING:
            wire.load_default = factory
        elif f.default is not dataclasses.MISSING:
            wire.load_default = f.default
        else:
            wire.required = True
        declared[f.name] = wire

    def make(self: Schema, data: dict[str, Any], **kwargs: Any) -> T:
        return record(**data)

    declared["make_record"] = post_load(make)
    declared["__doc__"] = record.__doc__
    return type(name or f"{record.__name__}Schema", (Schema,), declared)

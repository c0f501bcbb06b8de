"""Check a JSON answer against a schema of the served OpenAPI document: every required key there,
no key it does not document, nested objects, lists and enumerations followed."""

from __future__ import annotations

from typing import Any


def conforms(value: Any, schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return conforms(value, components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "allOf" in schema:
        return all(conforms(value, part, components) for part in schema["allOf"])
    if value is None:
        return bool(schema.get("nullable")) or "null" in (schema.get("type") or [])
    if "properties" in schema:
        props = schema["properties"]
        return (
            isinstance(value, dict)
            and set(schema.get("required", [])) <= set(value)
            and set(value) <= set(props)
            and all(conforms(v, props[k], components) for k, v in value.items())
        )
    if schema.get("type") == "array":
        return isinstance(value, list) and all(conforms(v, schema.get("items", {}), components) for v in value)
    if "enum" in schema:
        return value in schema["enum"]
    return True

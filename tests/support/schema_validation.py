"""A small JSON Schema checker for the keywords orderflow's exported schemas use.

The jsonschema package is not a dependency; this covers ``type``, ``properties``, ``required``,
``items``, ``const``, ``anyOf``, ``additionalProperties`` (boolean or schema) and ``$ref`` into
``$defs``,
and fails on any other keyword so that a schema using more is not half-checked.
"""

from __future__ import annotations

from typing import Any

_KNOWN = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "default", "type",
    "properties", "required", "items", "const", "anyOf", "additionalProperties",
}  # fmt: skip


def _is_type(value: Any, name: str) -> bool:
    match name:
        case "string":
            return isinstance(value, str)
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
        case "null":
            return value is None
    raise ValueError(f"unknown JSON Schema type {name!r}")


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation of ``schema`` by ``instance``, as 'path: message'; empty if valid."""
    return _check(instance, schema, schema, "$")


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{path}: the checker does not know {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _check(value, root["$defs"][name], root, path)
    if "anyOf" in schema:
        if all(_check(value, option, root, path) for option in schema["anyOf"]):
            return [f"{path}: matches none of anyOf"]
        return []
    if "type" in schema and not _is_type(value, schema["type"]):
        return [f"{path}: {value!r} is not of type {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: {value!r} is not {schema['const']!r}"]
    errors: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        required = schema.get("required", ())
        errors += [f"{path}: {name!r} is required" for name in required if name not in value]
        for name, item in value.items():
            if name in properties:
                errors += _check(item, properties[name], root, f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: {name!r} is not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _check(item, schema["additionalProperties"], root, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += _check(item, schema["items"], root, f"{path}[{index}]")
    return errors

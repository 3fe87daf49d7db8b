"""JSON Schemas (draft 2020-12) of orderflow's records, derived from their Faust fields.

One schema per record type and schema version, for the teams that produce to or consume from
orderflow's topics without Faust. A schema accepts more fields than the record declares
(``additionalProperties``), as a newer producer may add fields with defaults. The ``__faust``
object must name the record's namespace: the topics decode payloads by it.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

import faust
import orjson

from orderflow.schemas import ALL_RECORDS
from orderflow.schemas.envelope import SCHEMA_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def schema_version(record: type[faust.Record]) -> int:
    version = record._options.defaults.get("schema_version", SCHEMA_VERSION)
    return int(version)


def schema_id(record: type[faust.Record]) -> str:
    return f"urn:orderflow:schema:{record._options.namespace}:v{schema_version(record)}"


def json_schema(record: type[faust.Record]) -> dict[str, Any]:
    """The JSON Schema of ``record``'s payloads; nested records are in ``$defs``."""
    defs: dict[str, dict[str, Any]] = {}
    schema = {
        "$schema": DIALECT,
        "$id": schema_id(record),
        **_object_schema(record, defs),
    }
    # The topics decode a payload by its namespace, so the top-level record must carry it.
    schema["required"] = [*schema["required"], "__faust"]
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def export(directory: Path) -> list[Path]:
    """Write ``<Name>.v<version>.json`` for every record of the topics; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for record in ALL_RECORDS:
        path = directory / f"{record.__name__}.v{schema_version(record)}.json"
        path.write_bytes(orjson.dumps(json_schema(record), option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


def _object_schema(record: type[faust.Record], defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    options = record._options
    properties: dict[str, Any] = {}
    for name, annotation in options.fields.items():
        properties[name] = _field_schema(annotation, defs, where=f"{record.__name__}.{name}")
        if name in options.defaults:
            properties[name] = {**properties[name], "default": options.defaults[name]}
    properties["__faust"] = {
        "type": "object",
        "properties": {"ns": {"const": options.namespace}},
        "required": ["ns"],
    }
    schema: dict[str, Any] = {"title": record.__name__}
    if record.__doc__:
        schema["description"] = inspect.cleandoc(record.__doc__)
    schema |= {
        "type": "object",
        "properties": properties,
        "required": [name for name in options.fields if name not in options.defaults],
        "additionalProperties": True,
    }
    return schema


def _field_schema(annotation: Any, defs: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and len(args) == 1:
        return {"type": "array", "items": _field_schema(args[0], defs, where)}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": _field_schema(args[1], defs, where)}
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        others = [arg for arg in args if arg is not type(None)]
        return {"anyOf": [*(_field_schema(a, defs, where) for a in others), {"type": "null"}]}
    if isinstance(annotation, type) and issubclass(annotation, faust.Record):
        name = annotation.__name__
        if name not in defs:
            defs[name] = {}  # reserved first: a record that refers to itself ends here
            defs[name] = _object_schema(annotation, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"{where}: no JSON Schema for the field type {annotation!r}")

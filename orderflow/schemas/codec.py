"""Decoding records from the bytes on a topic, with an error that says what is wrong.

Agents receive raw bytes and decode them here rather than in Faust, so that a message that is
not JSON, names an unknown record type, lacks a field or has a wrong type reaches orderflow's
error handling (and the dead-letter topic) instead of being dropped by the framework.
"""

from __future__ import annotations

from typing import Any

import orjson

from orderflow.errors import OrderflowError
from orderflow.schemas import ALL_RECORDS, Message

_BY_NAMESPACE: dict[str, type[Message]] = {
    record._options.namespace: record for record in ALL_RECORDS
}


class SchemaError(OrderflowError):
    """A message that no handler can ever accept as it is: not retried, dead-lettered."""


def decode(raw: bytes | None) -> Message:
    if raw is None:
        raise SchemaError("the message has no value")
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise SchemaError(f"the value is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise SchemaError("the value is not a JSON object")
    metadata = data.get("__faust")
    namespace = metadata.get("ns") if isinstance(metadata, dict) else None
    record_type = _BY_NAMESPACE.get(namespace) if isinstance(namespace, str) else None
    if record_type is None:
        raise SchemaError(f"unknown record type {namespace!r}")
    try:
        record = record_type.from_data(data)
    except (TypeError, ValueError, KeyError) as error:
        raise SchemaError(f"{namespace}: {error}") from None
    problems = record.validate()
    if problems:
        raise SchemaError(f"{namespace}: " + "; ".join(str(p) for p in problems))
    return record

"""The fields every command and event carries, and how new ones are stamped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypedDict

import faust

SCHEMA_VERSION = 1


class Message(faust.Record, abstract=True, serializer="json"):
    """Base of every record on orderflow's topics.

    ``event_id`` identifies this message (consumers drop repeats by it), ``correlation_id`` is
    the order (or sku) the conversation is about, ``causation_id`` is the ``event_id`` of the
    message that caused this one, ``occurred_at`` is an ISO 8601 UTC time.
    """

    event_id: str
    correlation_id: str
    causation_id: str
    occurred_at: str
    schema_version: int = SCHEMA_VERSION


class Envelope(TypedDict):
    event_id: str
    correlation_id: str
    causation_id: str
    occurred_at: str


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def envelope(correlation_id: str, causation_id: str | None = None) -> Envelope:
    """Envelope fields for a new message; a message with no cause is its own cause."""
    event_id = new_id()
    return {
        "event_id": event_id,
        "correlation_id": correlation_id,
        "causation_id": causation_id or event_id,
        "occurred_at": now_iso(),
    }


def caused_by(cause: Message, event_id: str | None = None) -> Envelope:
    """Envelope fields for a message caused by ``cause``, in the same conversation."""
    fields = envelope(cause.correlation_id, cause.event_id)
    if event_id is not None:
        fields["event_id"] = event_id
    return fields


# Ids of the saga's outputs are derived from what they are, so that a re-sent copy of a
# command or event (after a redelivery) carries the same id as the first and reads as a copy.
_OUTPUT_IDS = uuid.UUID("6f726465-7266-6c6f-772d-736167612d31")


def output_id(order_id: str, what: str) -> str:
    return uuid.uuid5(_OUTPUT_IDS, f"{order_id}/{what}").hex

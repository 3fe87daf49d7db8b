"""Reliable intake: a command accepted over HTTP is written to PostgreSQL, in one transaction
with its outbox rows and its Idempotency-Key record, before the client hears 2xx. Nothing is
produced to Kafka inside the request; the outbox relay publishes the rows afterwards.

Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): the first answer to a
(client, key) pair is stored with a hash of the request. A retry with the same request gets
that answer again; with a different request, 422; while the first request is still being
processed (a transaction-level advisory lock on the pair is held), 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from orderflow.db import CONNECTION_ERRORS, DatabaseUnavailable
from orderflow.errors import OrderflowError
from orderflow.observability import tracing
from orderflow.schemas import Message

NOTIFY_CHANNEL = "orderflow_outbox"
MAX_KEY_LENGTH = 255


class IdempotencyError(OrderflowError):
    """The Idempotency-Key cannot be honoured for this request."""


class KeyInFlight(IdempotencyError):
    """A request with this key is being processed right now (409)."""


class KeyReused(IdempotencyError):
    """This key was used for a different request (422)."""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    scope: str  # the client the key belongs to
    key: str
    request_hash: str

    @classmethod
    def of(cls, header: str, scope: str, method: str, path: str, body: Any) -> IdempotencyKey:
        """Parse the header (an RFC 8941 string, quotes optional) and fingerprint the request."""
        key = header.strip()
        if len(key) >= 2 and key[0] == key[-1] == '"':
            key = key[1:-1]
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise IdempotencyError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
            )
        canonical = orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)
        return cls(scope, key, hashlib.sha256(canonical).hexdigest())


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    aggregate_id: str
    event_id: str
    topic: str
    key: str
    payload: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: Message, topic: str, key: str, aggregate_id: str) -> OutboxMessage:
        """A row for ``record``; it carries the current trace context, for the relay."""
        return cls(aggregate_id, record.event_id, topic, key, record.dumps(), tracing.inject())


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as stored for replays."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class IntakeRow:
    order_id: str
    customer_id: str
    command: bytes  # the accepted request as JSON


def _store(*, claiming: bool) -> str:
    """Everything an accepted command writes, in one statement (one round trip): the intake
    row if any, the outbox rows in the order given (they get ascending ids, which the relay
    publishes an aggregate's rows in), the Idempotency-Key record if any, and the notification
    that wakes the relays at commit instead of at their next poll.

    ``claiming``: the statement first takes the key's lock (without waiting) and inserts the
    key only if it is new; everything else is written only if it did. It answers whether the
    lock was free and whether the key was new: a key seen before needs the lookup of
    :func:`_claim_key`, in a transaction of its own.
    """
    claimed = "EXISTS (SELECT FROM idempotency)"
    only_if_claimed = f"WHERE {claimed}" if claiming else ""
    key = (
        """
    locked AS MATERIALIZED (
        SELECT pg_try_advisory_xact_lock(hashtextextended($10::text || chr(31) || $11::text, 0))
               AS free
    ), idempotency AS (
        INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body,
                                      response_headers, expires_at)
        SELECT $10::text, $11::text, $12::text, $13::integer, $14::bytea, $15::jsonb,
               now() + make_interval(secs => $16::double precision)
        FROM locked WHERE free
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING key
    ),"""
        if claiming
        else """
    idempotency AS (
        INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body,
                                      response_headers, expires_at)
        SELECT $10::text, $11::text, $12::text, $13::integer, $14::bytea, $15::jsonb,
               now() + make_interval(secs => $16::double precision)
        WHERE $10::text IS NOT NULL
    ),"""
    )
    answer = (
        f"SELECT (SELECT free FROM locked) AS free, {claimed} AS claimed,"
        " (SELECT count(*) FROM notified) AS notified"
        if claiming
        else "SELECT count(*) AS notified FROM notified"
    )
    return f"""
WITH{key}
    intake AS (
        INSERT INTO order_intake (order_id, customer_id, command)
        SELECT $1::text, $2::text, $3::text
        WHERE $1::text IS NOT NULL{f" AND {claimed}" if claiming else ""}
    ), outbox AS (
        INSERT INTO outbox (aggregate_id, event_id, topic, key, payload, headers)
        SELECT aggregate_id, event_id, topic, key, payload, headers::jsonb
        FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::text[])
             WITH ORDINALITY AS m(aggregate_id, event_id, topic, key, payload, headers, position)
        {only_if_claimed}
        ORDER BY position
    ), notified AS (
        SELECT pg_notify('{NOTIFY_CHANNEL}', '') {only_if_claimed}
    )
{answer}
"""


STORE = _store(claiming=False)
CLAIM_AND_STORE = _store(claiming=True)


async def accept(
    pool: asyncpg.Pool,
    *,
    answer: Answer,
    messages: Sequence[OutboxMessage],
    intake: IntakeRow | None = None,
    idempotency: IdempotencyKey | None = None,
    key_ttl: float,
    acquire_timeout: float,
) -> Answer:
    """Store the command durably and return what to answer (the first answer, for a retry).

    Without an Idempotency-Key that is one statement, atomic on its own. With one, a new key
    is claimed by the same one statement; a key seen before (or an expired one) is claimed in a
    transaction (locked, its stored answer read) that stores the command if it may.
    """
    arguments = _store_arguments(answer, messages, intake, idempotency, key_ttl)
    try:
        async with pool.acquire(timeout=acquire_timeout) as connection:
            if idempotency is None:
                await connection.execute(STORE, *arguments)
                return answer
            first = await connection.fetchrow(CLAIM_AND_STORE, *arguments)
            if first["claimed"]:
                return answer
            if not first["free"]:
                raise KeyInFlight("a request with this Idempotency-Key is still being processed")
            async with connection.transaction():
                stored = await _claim_key(connection, idempotency)
                if stored is not None:
                    return stored
                await connection.execute(STORE, *arguments)
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"PostgreSQL is unavailable: {error}") from error
    return answer


def _store_arguments(
    answer: Answer,
    messages: Sequence[OutboxMessage],
    intake: IntakeRow | None,
    idempotency: IdempotencyKey | None,
    key_ttl: float,
) -> tuple[Any, ...]:
    row = (
        (intake.order_id, intake.customer_id, intake.command.decode())
        if intake is not None
        else (None, None, None)
    )
    outbox = (
        [m.aggregate_id for m in messages],
        [m.event_id for m in messages],
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.payload for m in messages],
        [_json(m.headers) for m in messages],
    )
    key = (
        (
            idempotency.scope,
            idempotency.key,
            idempotency.request_hash,
            answer.status,
            answer.body,
            _json(answer.headers),
            key_ttl,
        )
        if idempotency is not None
        else (None,) * 7
    )
    return (*row, *outbox, *key)


async def _claim_key(connection: asyncpg.Connection, key: IdempotencyKey) -> Answer | None:
    """Lock the (scope, key) pair for this transaction; return the stored answer if any.

    Two statements: the lookup must see what the lock's last holder committed, and in READ
    COMMITTED only a statement that starts after the lock is taken does.
    """
    locked = await connection.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
        f"{key.scope}\x1f{key.key}",
    )
    if not locked:
        raise KeyInFlight("a request with this Idempotency-Key is still being processed")
    row = await connection.fetchrow(
        """SELECT request_hash, response_status, response_body, response_headers,
                  expires_at > now() AS live
           FROM idempotency_keys WHERE scope = $1 AND key = $2""",
        key.scope,
        key.key,
    )
    if row is None:
        return None
    if not row["live"]:
        await connection.execute(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", key.scope, key.key
        )
        return None
    if row["request_hash"] != key.request_hash:
        raise KeyReused("this Idempotency-Key was used with a different request")
    return Answer(
        row["response_status"],
        bytes(row["response_body"]),
        orjson.loads(row["response_headers"]),
        replayed=True,
    )


async def intake_of(
    pool: asyncpg.Pool, order_id: str, acquire_timeout: float
) -> dict[str, Any] | None:
    """The accepted request of an order, or None if no such order was accepted."""
    try:
        async with pool.acquire(timeout=acquire_timeout) as connection:
            row = await connection.fetchrow(
                "SELECT customer_id, command, received_at FROM order_intake WHERE order_id = $1",
                order_id,
            )
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"PostgreSQL is unavailable: {error}") from error
    if row is None:
        return None
    return {**orjson.loads(row["command"]), "received_at": row["received_at"].isoformat()}


def _json(value: Mapping[str, str]) -> str:
    return orjson.dumps(dict(value)).decode()

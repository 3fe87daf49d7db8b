"""The intake's transaction and Idempotency-Key rules against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from orderflow import intake
from orderflow.db import Database, DatabaseUnavailable
from orderflow.db.migrate import available, migrate
from orderflow.settings import Settings
from tests.conftest import fresh_database

BODY = {"customer_id": "c-1", "currency": "USD", "lines": [{"sku": "A", "quantity": 1}]}


@pytest.fixture(scope="module")
def intake_database(postgres: str, run_id: str) -> Iterator[str]:
    """A database of these tests' own: their outbox rows name topics no relay may publish."""
    with fresh_database(postgres, f"orderflow_{run_id}_intake_rules") as url:
        yield url


@pytest.fixture
async def pool(intake_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(intake_database, min_size=1, max_size=60)
    yield pool
    await pool.close()


def command(order_id: str) -> tuple[intake.Answer, intake.OutboxMessage, intake.IntakeRow]:
    answer = intake.Answer(202, orjson.dumps({"order_id": order_id}), {"Location": order_id})
    message = intake.OutboxMessage(order_id, uuid.uuid4().hex, "t.orders.commands", order_id, b"{}")
    return answer, message, intake.IntakeRow(order_id, "c-1", orjson.dumps(BODY))


async def accept(
    pool: asyncpg.Pool, order_id: str, key: intake.IdempotencyKey | None, ttl: float = 60
) -> intake.Answer:
    answer, message, row = command(order_id)
    return await intake.accept(
        pool,
        answer=answer,
        messages=[message],
        intake=row,
        idempotency=key,
        key_ttl=ttl,
        acquire_timeout=5,
    )


def key_for(name: str, body: Any = BODY, scope: str = "c-1") -> intake.IdempotencyKey:
    return intake.IdempotencyKey.of(f'"{name}"', scope, "POST", "/api/v1/orders", body)


async def count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    value: int = await pool.fetchval(sql, *args)
    return value


async def test_one_transaction_writes_the_intake_the_outbox_and_the_key(pool: asyncpg.Pool) -> None:
    order_id = uuid.uuid4().hex
    answer = await accept(pool, order_id, key_for(order_id))
    assert answer.status == 202
    assert not answer.replayed
    assert await count(pool, "SELECT count(*) FROM order_intake WHERE order_id = $1", order_id) == 1
    assert await count(pool, "SELECT count(*) FROM outbox WHERE aggregate_id = $1", order_id) == 1
    assert await count(pool, "SELECT count(*) FROM idempotency_keys WHERE key = $1", order_id) == 1


async def test_the_same_key_and_request_replay_the_first_answer(pool: asyncpg.Pool) -> None:
    key = key_for(uuid.uuid4().hex)
    first = await accept(pool, "first-" + key.key, key)
    again = await accept(pool, "second-" + key.key, key)
    assert again.replayed
    assert (again.status, again.body, dict(again.headers)) == (
        first.status,
        first.body,
        dict(first.headers),
    )
    assert (
        await count(
            pool, "SELECT count(*) FROM order_intake WHERE order_id = $1", "second-" + key.key
        )
        == 0
    )


async def test_the_same_key_with_another_request_is_refused(pool: asyncpg.Pool) -> None:
    name = uuid.uuid4().hex
    await accept(pool, "a-" + name, key_for(name))
    with pytest.raises(intake.KeyReused):
        await accept(pool, "b-" + name, key_for(name, body={**BODY, "currency": "EUR"}))
    assert (
        await count(pool, "SELECT count(*) FROM order_intake WHERE order_id = $1", "b-" + name) == 0
    )


async def test_keys_belong_to_their_client(pool: asyncpg.Pool) -> None:
    name = uuid.uuid4().hex
    await accept(pool, "c1-" + name, key_for(name, scope="c-1"))
    other = await accept(pool, "c2-" + name, key_for(name, scope="c-2"))
    assert not other.replayed


async def test_a_key_still_in_flight_is_refused(pool: asyncpg.Pool) -> None:
    key = key_for(uuid.uuid4().hex)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{key.scope}\x1f{key.key}"
        )
        with pytest.raises(intake.KeyInFlight):
            await accept(pool, "x-" + key.key, key)


async def test_fifty_concurrent_requests_with_one_key_make_one_order(pool: asyncpg.Pool) -> None:
    key = key_for(uuid.uuid4().hex)
    results = await asyncio.gather(
        *(accept(pool, f"{key.key}-{i}", key) for i in range(50)), return_exceptions=True
    )
    answers = [r for r in results if isinstance(r, intake.Answer)]
    refused = [r for r in results if isinstance(r, intake.KeyInFlight)]
    assert len(answers) + len(refused) == 50, results
    assert len({a.body for a in answers}) == 1
    stored = await count(
        pool, "SELECT count(*) FROM order_intake WHERE order_id LIKE $1", key.key + "-%"
    )
    assert stored == 1


async def test_an_expired_key_is_forgotten(pool: asyncpg.Pool) -> None:
    name = uuid.uuid4().hex
    await accept(pool, "old-" + name, key_for(name), ttl=0.01)
    await asyncio.sleep(0.05)
    fresh = await accept(pool, "new-" + name, key_for(name, body={**BODY, "currency": "EUR"}))
    assert not fresh.replayed
    assert (
        await count(pool, "SELECT count(*) FROM order_intake WHERE order_id = $1", "new-" + name)
        == 1
    )


@pytest.mark.parametrize("with_key", [True, False], ids=["with a key", "without a key"])
async def test_a_failure_inside_the_command_leaves_no_row(
    pool: asyncpg.Pool, with_key: bool
) -> None:
    """With a key the command is a transaction; without one, a single statement: either way
    all of it is written or none of it."""
    order_id = uuid.uuid4().hex
    answer, message, row = command(order_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await intake.accept(
            pool,
            answer=answer,
            messages=[message, message],  # the second insert violates UNIQUE(event_id)
            intake=row,
            idempotency=key_for(order_id) if with_key else None,
            key_ttl=60,
            acquire_timeout=5,
        )
    assert await count(pool, "SELECT count(*) FROM order_intake WHERE order_id = $1", order_id) == 0
    assert await count(pool, "SELECT count(*) FROM outbox WHERE aggregate_id = $1", order_id) == 0
    assert await count(pool, "SELECT count(*) FROM idempotency_keys WHERE key = $1", order_id) == 0


async def test_the_outbox_rows_of_a_command_keep_their_order_and_headers(
    pool: asyncpg.Pool,
) -> None:
    aggregate = uuid.uuid4().hex
    messages = [
        intake.OutboxMessage(
            aggregate, uuid.uuid4().hex, "t.x", f"k{n}", bytes([n]), {"traceparent": f"t{n}"}
        )
        for n in range(20)
    ]
    answer = intake.Answer(202, b"{}")
    await intake.accept(pool, answer=answer, messages=messages, key_ttl=60, acquire_timeout=5)
    rows = await pool.fetch(
        "SELECT key, payload, headers FROM outbox WHERE aggregate_id = $1 ORDER BY id", aggregate
    )
    assert [(r["key"], bytes(r["payload"]), orjson.loads(r["headers"])) for r in rows] == [
        (f"k{n}", bytes([n]), {"traceparent": f"t{n}"}) for n in range(20)
    ]
    intake_rows = "SELECT count(*) FROM order_intake WHERE order_id = $1"
    assert await count(pool, intake_rows, aggregate) == 0  # no intake row was given


async def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    settings = Settings(database_url="postgresql://u:p@127.0.0.1:9/none", database_timeout=1)
    database = Database(settings)
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        await database.pool()


async def test_migrations_run_once_even_from_concurrent_migrators(
    postgres: str, run_id: str
) -> None:
    name = f"orderflow_{run_id}_migrations"
    url = postgres.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        connections = [await asyncpg.connect(url) for _ in range(4)]
        try:
            applied = await asyncio.gather(*(migrate(c) for c in connections))
            # Each migration was applied by exactly one of them.
            names = sorted(m.name for batch in applied for m in batch)
            assert names == sorted(m.name for m in available())
            versions = await connections[0].fetch("SELECT version FROM schema_migrations")
            assert [v["version"] for v in versions] == [m.version for m in available()]
            assert await migrate(connections[0]) == []
        finally:
            for connection in connections:
                await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

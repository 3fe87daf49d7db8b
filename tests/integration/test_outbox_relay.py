"""The outbox relay against the real PostgreSQL and Kafka: order per aggregate with relays
running side by side, and rows that a crash left unmarked are published again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from orderflow.db import Database
from orderflow.settings import Settings
from orderflow.sinks.outbox_relay import OutboxRelay, outbox_lag
from tests.conftest import fresh_database
from tests.support.kafka import create_topic

AGGREGATES = 20
PER_AGGREGATE = 10


@pytest.fixture
async def topic(kafka_bootstrap: str, run_id: str) -> str:
    name = f"{run_id}.relay.{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, name, partitions=3)
    return name


@pytest.fixture
def settings(postgres: str, kafka_bootstrap: str, run_id: str) -> Iterator[Settings]:
    """Settings pointing at a database of this test's own: the relays publish every row."""
    with fresh_database(postgres, f"orderflow_{run_id}_{uuid.uuid4().hex[:8]}") as url:
        yield replace(
            Settings(), database_url=url, broker_url=f"kafka://{kafka_bootstrap}",
            outbox_batch_size=7,
        )  # fmt: skip


async def fill(database_url: str, topic: str) -> None:
    rows = [
        (f"agg-{a}", uuid.uuid4().hex, topic, f"agg-{a}", orjson.dumps({"agg": a, "seq": s}), "{}")
        for s in range(PER_AGGREGATE)
        for a in range(AGGREGATES)
    ]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.executemany(
            """INSERT INTO outbox (aggregate_id, event_id, topic, key, payload, headers)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            rows,
        )
    finally:
        await connection.close()


async def run_relays(
    settings: Settings, count: int, leave: int = 0, topic_grace: float = 30.0
) -> None:
    """Run ``count`` relays side by side until only ``leave`` rows are pending."""
    databases = [Database(settings) for _ in range(count)]
    tasks = [
        asyncio.create_task(OutboxRelay(settings, db, topic_grace=topic_grace).run())
        for db in databases
    ]
    try:
        async with asyncio.timeout(60):
            while True:
                lag = await outbox_lag(databases[0])
                if lag["pending"] <= leave:
                    break
                await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for database in databases:
            await database.close()


async def published(kafka_bootstrap: str, topic: str, expected: int) -> dict[int, list[int]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: dict[int, list[int]] = defaultdict(list)
    try:
        async with asyncio.timeout(30):
            while sum(len(v) for v in seen.values()) < expected:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        value = orjson.loads(record.value)
                        assert record.key == f"agg-{value['agg']}".encode()
                        seen[value["agg"]].append(value["seq"])
        # Nothing more than expected arrives.
        extra = await consumer.getmany(timeout_ms=1000)
        assert not any(extra.values())
    finally:
        await consumer.stop()
    return seen


async def test_two_relays_publish_every_row_once_in_order_per_aggregate(
    settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    await fill(settings.database_url, topic)
    await run_relays(settings, count=2)
    seen = await published(kafka_bootstrap, topic, AGGREGATES * PER_AGGREGATE)
    assert seen == {a: list(range(PER_AGGREGATE)) for a in range(AGGREGATES)}


async def test_rows_a_crash_left_unmarked_are_published_again(
    settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    await fill(settings.database_url, topic)
    await run_relays(settings, count=1)
    # A relay killed after the broker acknowledged but before its commit leaves exactly this:
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "UPDATE outbox SET published_at = NULL WHERE aggregate_id = 'agg-3' AND topic = $1",
            topic,
        )
    finally:
        await connection.close()
    await run_relays(settings, count=1)
    seen = await published(kafka_bootstrap, topic, AGGREGATES * PER_AGGREGATE + PER_AGGREGATE)
    assert seen[3] == list(range(PER_AGGREGATE)) * 2  # at least once, still in order
    assert all(seen[a] == list(range(PER_AGGREGATE)) for a in range(AGGREGATES) if a != 3)


async def test_a_row_for_a_missing_topic_is_set_aside_and_blocks_only_its_order(
    settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    await fill(settings.database_url, topic)
    connection = await asyncpg.connect(settings.database_url)
    try:
        # agg-5's first message names a topic that does not exist.
        await connection.execute(
            """UPDATE outbox SET topic = $1 WHERE id = (
                   SELECT min(id) FROM outbox WHERE aggregate_id = 'agg-5')""",
            topic + ".missing",
        )
        await run_relays(settings, count=1, leave=PER_AGGREGATE - 1, topic_grace=1.0)
        failed = await connection.fetch(
            "SELECT aggregate_id, last_error FROM outbox WHERE failed_at IS NOT NULL"
        )
        held_back = await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE aggregate_id = 'agg-5' AND published_at IS NULL"
        )
    finally:
        await connection.close()
    assert [(r["aggregate_id"], r["last_error"]) for r in failed] == [
        ("agg-5", f"topic {topic}.missing does not exist")
    ]
    assert held_back == PER_AGGREGATE  # its later rows wait: the order's sequence is kept
    seen = await published(kafka_bootstrap, topic, (AGGREGATES - 1) * PER_AGGREGATE)
    assert 5 not in seen
    assert all(seen[a] == list(range(PER_AGGREGATE)) for a in range(AGGREGATES) if a != 5)
    database = Database(settings)
    try:
        assert (await outbox_lag(database))["failed"] == 1
    finally:
        await database.close()

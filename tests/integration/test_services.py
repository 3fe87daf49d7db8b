"""Each local service speaks its real protocol to the client library orderflow uses for it."""

from __future__ import annotations

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from elasticsearch import AsyncElasticsearch
from motor.motor_asyncio import AsyncIOMotorClient

from tests.support.kafka import create_topic


async def test_kafka_round_trip_keeps_keys_on_their_partition(
    kafka_bootstrap: str, run_id: str
) -> None:
    topic = f"{run_id}.smoke"
    await create_topic(kafka_bootstrap, topic, partitions=3)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = {}
        for i in range(30):
            key = f"order-{i % 5}".encode()
            metadata = await producer.send_and_wait(topic, orjson.dumps({"n": i}), key=key)
            sent.setdefault(key, set()).add(metadata.partition)
    finally:
        await producer.stop()
    assert all(len(partitions) == 1 for partitions in sent.values())

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        received = []
        while len(received) < 30:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no records arrived within 5 s"
            received += [orjson.loads(r.value)["n"] for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert sorted(received) == list(range(30))


async def test_postgres_commits_and_reads_back(postgres: str, run_id: str) -> None:
    connection = await asyncpg.connect(postgres)
    try:
        schema = f"smoke_{run_id}"
        await connection.execute(f"CREATE SCHEMA {schema}")
        try:
            await connection.execute(f"CREATE TABLE {schema}.t (id int PRIMARY KEY, v jsonb)")
            async with connection.transaction():
                await connection.execute(f"INSERT INTO {schema}.t VALUES (1, '{{\"a\": 1}}')")
            value = await connection.fetchval(f"SELECT v->>'a' FROM {schema}.t WHERE id = 1")
            assert value == "1"
            assert (await connection.fetchval("SHOW server_version_num")) >= "150000"
        finally:
            await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await connection.close()


async def test_elasticsearch_indexes_and_searches(elasticsearch: str, run_id: str) -> None:
    client = AsyncElasticsearch(elasticsearch)
    index = f"{run_id}-smoke"
    try:
        await client.index(index=index, id="p1", document={"name": "Red running shoe"})
        await client.index(index=index, id="p2", document={"name": "Blue kettle"})
        await client.indices.refresh(index=index)
        found = await client.search(index=index, query={"match": {"name": "shoe"}})
        assert [hit["_id"] for hit in found["hits"]["hits"]] == ["p1"]
        health = await client.cluster.health()
        assert health["status"] in ("green", "yellow")
    finally:
        await client.options(ignore_status=404).indices.delete(index=index)
        await client.close()


async def test_mongodb_wire_server_upserts_conditionally(mongodb: str, run_id: str) -> None:
    client: AsyncIOMotorClient = AsyncIOMotorClient(mongodb, serverSelectionTimeoutMS=5000)
    collection = client[f"smoke_{run_id}"]["documents"]
    try:
        await collection.insert_one({"_id": "o1", "version": 2, "status": "CONFIRMED"})
        # An older version must not overwrite a newer one: the sinks rely on this filter.
        stale = await collection.update_one(
            {"_id": "o1", "version": {"$lt": 1}}, {"$set": {"version": 1, "status": "PENDING"}}
        )
        assert stale.matched_count == 0
        newer = await collection.update_one(
            {"_id": "o1", "version": {"$lt": 3}}, {"$set": {"version": 3, "status": "CANCELLED"}}
        )
        assert newer.modified_count == 1
        assert await collection.find_one({"_id": "o1"}) == {
            "_id": "o1",
            "version": 3,
            "status": "CANCELLED",
        }
    finally:
        await client.drop_database(f"smoke_{run_id}")
        client.close()

"""`orderflow projections verify [--repair]` against real Kafka, Elasticsearch and MongoDB-wire:
what a store lacks or holds older than the documents topic is found, and written with --repair.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from orderflow.cli import main
from orderflow.projections import PROJECTIONS
from orderflow.projections.read_side import ReadSide
from orderflow.projections.rebuild import verify
from orderflow.projections.stores import Document
from orderflow.settings import Settings
from orderflow.topics import ORDERS_DOCUMENTS
from tests.support.kafka import create_topic

NAMES = ("orders-search", "orders-documents")


def order(order_id: str, version: int) -> dict[str, object]:
    at = "2026-12-01T10:00:00+00:00"
    return {
        "order_id": order_id,
        "customer_id": "c-1",
        "status": "CONFIRMED" if version > 1 else "PENDING",
        "reason": None,
        "detail": None,
        "payment_id": None,
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": 100}],
        "total": 100,
        "currency": "EUR",
        "placed_at": at,
        "updated_at": at,
        "history": [{"status": "PENDING", "at": at}],
        "version": version,
    }


@pytest.fixture
async def settings(
    kafka: str, kafka_bootstrap: str, elasticsearch: str, mongodb: str, run_id: str
) -> AsyncIterator[Settings]:
    app_id = f"{run_id}-verify"
    made = dataclasses.replace(
        Settings(),
        app_id=app_id,
        topic_prefix=f"{app_id}.",
        broker_url=kafka,
        elasticsearch_url=elasticsearch,
        mongodb_url=mongodb,
    )
    await create_topic(kafka_bootstrap, made.topic(ORDERS_DOCUMENTS), 2)
    yield made
    side = ReadSide(made)
    await side.elasticsearch.options(ignore_status=404).indices.delete(index=f"{app_id}-*")
    for name in await side.mongodb.list_collection_names():
        if name.startswith(f"{app_id}."):
            await side.mongodb.drop_collection(name)
    await side.close()


async def test_verify_finds_what_each_store_is_behind_on_and_repair_writes_it(
    settings: Settings, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        topic = settings.topic(ORDERS_DOCUMENTS)
        for order_id, version in [("o-1", 1), ("o-1", 3), ("o-2", 2), ("o-3", 1), ("o-4", 1)]:
            document = orjson.dumps(order(order_id, version))
            await producer.send_and_wait(topic, document, key=order_id.encode())
        await producer.send_and_wait(topic, b"not a document", key=b"o-5")
    finally:
        await producer.stop()
    side = ReadSide(settings)
    try:
        for name in NAMES:
            store = side.store(PROJECTIONS[name])
            await store.prepare()
            shape = PROJECTIONS[name].shape
            # o-1 held at an older version, o-2 current, o-3 and o-4 missing
            held = [("o-1", 1), ("o-2", 2)]
            await store.write([Document(i, v, shape(order(i, v))) for i, v in held])
    finally:
        await side.close()

    for name in NAMES:
        report = await verify(settings, name)
        assert (report.documents, report.behind, report.repaired) == (4, 3, 0), name
        assert sorted(report.examples) == ["o-1", "o-3", "o-4"]
        repaired = await verify(settings, name, repair=True)
        assert (repaired.behind, repaired.repaired) == (3, 3), name
        assert (await verify(settings, name)).behind == 0, name

    for variable, value in settings.as_env().items():
        monkeypatch.setenv(variable, value)
    # The command runs its own event loop: in a thread of its own, as from a shell.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["projections", "verify", *NAMES])
    assert result.exit_code == 0, result.output
    assert "orders-documents     documents=4 behind=0" in result.output

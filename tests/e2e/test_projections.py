"""The read side end to end: two workers, real Kafka, Elasticsearch and a MongoDB-wire server.

1,000 orders and 500 product changes go through the HTTP API while a worker is killed with
SIGKILL mid-stream; then every record of both documents topics is produced again, twice, while
a worker is killed again. Afterwards every document in both stores equals what the tables say,
no store ever showed a document going back to an older version, a word from a description
finds its product and the category facets count right. Finally every projection is rebuilt
while readers keep searching and reading, and none of their requests fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orderflow.domain.catalog import ProductView
from orderflow.projections import PROJECTIONS
from orderflow.projections.read_side import ReadSide
from orderflow.settings import Settings
from tests.support import auth
from tests.support.workers import (
    PaymentSimulator,
    WorkerProcess,
    platform_workers,
    running,
    supervise,
)

PARTITIONS = 4
PRODUCTS = [f"P-{n:03d}" for n in range(120)]
DELETABLE = PRODUCTS[60:]  # the first 60 are never deleted
CATEGORIES = ["kitchen", "garden", "sport", "books", "toys"]
WORDS = ["sturdy", "light", "blue", "classic", "compact", "handmade", "quiet", "bright"]
ORDERS = 1_000
PRODUCT_CHANGES = 500
CONCURRENCY = 20


@pytest.fixture
def payment_simulator(tmp_path: Path) -> Iterator[str]:
    with PaymentSimulator(tmp_path / "payment-sim.log") as sim:
        yield sim.url


@pytest.fixture
def settings(run_id: str, kafka: str, elasticsearch: str, mongodb: str) -> Settings:
    name = f"{run_id}-proj"
    return dataclasses.replace(
        Settings(),
        app_id=name,
        topic_prefix=f"{name}.",
        broker_url=kafka,
        topic_partitions=PARTITIONS,
        elasticsearch_url=elasticsearch,
        mongodb_url=mongodb,
    )


@pytest.fixture
def workers(
    settings: Settings,
    kafka_bootstrap: str,
    database_url: str,
    tmp_path: Path,
    payment_simulator: str,
) -> Iterator[list[WorkerProcess]]:
    processes = platform_workers(
        2,
        tmp_path,
        name=settings.app_id,
        kafka=kafka_bootstrap,
        partitions=PARTITIONS,
        database_url=database_url,
        gateway=payment_simulator,
        session_timeout="6",
        saga_step_timeout="120",
        elasticsearch_url=settings.elasticsearch_url,
        mongodb_url=settings.mongodb_url,
    )
    with running(processes):
        yield processes


@pytest.fixture
async def read_side(settings: Settings) -> AsyncIterator[ReadSide]:
    side = ReadSide(settings)
    yield side
    prefix = settings.app_id.lower()
    await side.elasticsearch.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
    for name in await side.mongodb.list_collection_names():
        if name.startswith(f"{settings.app_id}."):
            await side.mongodb.drop_collection(name)
    await side.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=40)
    ) as client:
        yield client


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    """One request, retried while the worker is away (killed and restarting)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            async with session.request(method, url, json=body) as response:
                answer = await response.json(content_type=None)
                if response.status != 503:
                    return response.status, answer
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{method} {url} kept failing"
        await asyncio.sleep(0.2)


def product_body(rng: random.Random, product_id: str) -> dict[str, Any]:
    words = rng.sample(WORDS, 2)
    description = f"A {words[0]} and {words[1]} thing, number {product_id}."
    if product_id == PRODUCTS[7]:
        description += " Made in Zanzibar."
    return {
        "name": f"{words[0].title()} {rng.choice(['Mug', 'Kettle', 'Ball', 'Book', 'Kite'])}",
        "description": description,
        "category": rng.choice(CATEGORIES),
        "price": rng.randint(100, 20_000),
        "currency": "EUR",
        "attributes": {"colour": rng.choice(["red", "green", "blue"])},
        "tags": rng.sample(WORDS, rng.randint(0, 2)),
    }


async def change_products(
    session: aiohttp.ClientSession, workers: list[WorkerProcess], rng: random.Random
) -> None:
    changes: list[tuple[str, str]] = [("PUT", p) for p in PRODUCTS]
    while len(changes) < PRODUCT_CHANGES:
        product_id = rng.choice(PRODUCTS)
        deleting = product_id in DELETABLE and rng.random() < 0.15
        changes.append(("DELETE" if deleting else "PUT", product_id))
    for index, (method, product_id) in enumerate(changes):
        worker = workers[index % 2]
        body = product_body(rng, product_id) if method == "PUT" else None
        status, answer = await call(
            session, method, f"{worker.url}/api/v1/products/{product_id}", body
        )
        assert status == 202, answer
        await asyncio.sleep(0.01)


async def place_orders(
    session: aiohttp.ClientSession, workers: list[WorkerProcess], rng: random.Random
) -> list[str]:
    limit = asyncio.Semaphore(CONCURRENCY)
    bodies = [
        {
            "customer_id": f"customer-{rng.randint(1, 50)}",
            "currency": "EUR",
            "lines": [
                {"sku": sku, "quantity": rng.randint(1, 2), "unit_price": rng.randint(100, 5000)}
                for sku in rng.sample(PRODUCTS, rng.randint(1, 3))
            ],
            "payment": {"token": "tok_decline" if rng.random() < 0.1 else "tok_visa"},
        }
        for _ in range(ORDERS)
    ]

    async def place(index: int, body: dict[str, Any]) -> str:
        async with limit:
            status, answer = await call(
                session, "POST", f"{workers[index % len(workers)].url}/api/v1/orders", body
            )
            assert status == 202, answer
            return str(answer["order_id"])

    return list(await asyncio.gather(*(place(i, b) for i, b in enumerate(bodies))))


async def wait_until_settled(
    session: aiohttp.ClientSession, worker: WorkerProcess, order_ids: list[str]
) -> None:
    for order_id in order_ids:
        deadline = time.monotonic() + 240
        while True:
            status, view = await call(
                session, "GET", f"{worker.url}/api/v1/orders/{order_id}?wait=10"
            )
            if status == 200 and view["status"] != "PENDING":
                break
            assert time.monotonic() < deadline, f"order still pending: {view}"


async def table(session: aiohttp.ClientSession, worker: WorkerProcess, name: str) -> dict:
    """Every key and value of a table, read through the admin scan (a prefix at a time)."""
    everything: dict[str, Any] = {}
    prefixes = "0123456789abcdef" if name == "orders_view" else ["P-"]
    for prefix in prefixes:
        url = f"{worker.url}/api/v1/admin/tables/{name}/scan?prefix={prefix}&limit=1000"
        status, scan = await call(session, "GET", url)
        assert status == 200, scan
        assert scan["complete"], scan
        assert not scan["truncated"], scan
        everything.update({item["key"]: item["value"] for item in scan["items"]})
    return everything


def expected_documents(orders: dict[str, Any], products: dict[str, Any]) -> dict[str, dict]:
    """What each projection must hold, by id: the store's shape plus the version."""
    product_documents = {
        key: ProductView(**value).document()
        for key, value in products.items()
        if ProductView(**value).listed
    }
    expected: dict[str, dict[str, Any]] = {}
    for name, projection in PROJECTIONS.items():
        source = orders if projection.entity == "orders" else product_documents
        expected[name] = {
            key: {**projection.shape(document), "version": document["version"]}
            for key, document in source.items()
        }
    return expected


async def stored_documents(read_side: ReadSide) -> dict[str, dict[str, dict[str, Any]]]:
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name, projection in PROJECTIONS.items():
        store: Any = read_side.store(projection)
        if projection.store.value == "elasticsearch":
            await store.refresh()
            answer = await store.search(
                {"query": {"match_all": {}}, "size": 10_000, "version": True}
            )
            found[name] = {
                hit["_id"]: {**hit["_source"], "version": hit["_version"]}
                for hit in answer["hits"]["hits"]
            }
        else:
            collection = read_side.mongodb[await store.live(refresh=True)]
            found[name] = {document.pop("_id"): document async for document in collection.find({})}
    return found


async def wait_for_stores(
    session: aiohttp.ClientSession, worker: WorkerProcess, read_side: ReadSide
) -> dict[str, dict[str, dict]]:
    deadline = time.monotonic() + 240
    while True:
        expected = expected_documents(
            await table(session, worker, "orders_view"),
            await table(session, worker, "products_view"),
        )
        found = await stored_documents(read_side)
        if found == expected:
            return expected
        if time.monotonic() > deadline:
            for name in expected:
                differing = [
                    key
                    for key in expected[name].keys() | found[name].keys()
                    if expected[name].get(key) != found[name].get(key)
                ]
                assert not differing, (name, len(differing), differing[:3])
        await asyncio.sleep(1)


class VersionWatch:
    """Samples every stored document's version; records any that went back."""

    def __init__(self, read_side: ReadSide) -> None:
        self.read_side = read_side
        self.seen: dict[tuple[str, str], int] = {}
        self.regressions: list[tuple[str, str, int, int]] = []
        self.samples = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, documents in (await stored_documents(self.read_side)).items():
                for key, document in documents.items():
                    before = self.seen.get((name, key), -1)
                    if document["version"] < before:
                        self.regressions.append((name, key, before, document["version"]))
                    self.seen[(name, key)] = max(before, document["version"])
            self.samples += 1
            await asyncio.sleep(0.3)


async def replay_documents(settings: Settings, bootstrap: str, times: int) -> int:
    """Produce every record of both documents topics again, ``times`` times, in their order."""
    records = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for topic in ("orders.documents", "products.documents"):
            full = settings.topic(topic)
            partitions = [TopicPartition(full, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batch.items():
                    records += [(full, m.key, m.value) for m in messages if m.offset < ends[tp]]
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for _ in range(times):
            for topic, key, value in records:
                await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


def projections_cli(worker: WorkerProcess, *args: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "orderflow"), "projections", *args],
        env={k: v for k, v in worker.env.items() if k not in ("ORDERFLOW_WEB_PORT",)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


async def test_projections_match_the_tables_through_crashes_replays_and_rebuilds(
    workers: list[WorkerProcess],
    session: aiohttp.ClientSession,
    read_side: ReadSide,
    settings: Settings,
    kafka_bootstrap: str,
) -> None:
    first, second = workers
    rng = random.Random(6)
    supervision = asyncio.Event()
    supervisor = asyncio.create_task(supervise(workers, supervision, grace=10))
    try:
        for index, sku in enumerate(PRODUCTS):
            url = f"{workers[index % 2].url}/api/v1/inventory/{sku}/adjustments"
            status, _ = await call(session, "POST", url, {"delta": 10_000, "reason": "seed"})
            assert status == 202

        async def crash_mid_stream() -> None:
            await asyncio.sleep(6)
            second.kill9()
            second.start()

        catalog = asyncio.create_task(change_products(session, workers, rng))
        crash = asyncio.create_task(crash_mid_stream())
        order_ids = await place_orders(session, [first], rng)
        await asyncio.gather(catalog, crash)
        await asyncio.to_thread(second.wait_ready, supervised=True)
        await wait_until_settled(session, first, order_ids)
        settled = await wait_for_stores(session, first, read_side)
        assert len(settled["orders-documents"]) == ORDERS

        # Every document again, twice, with a worker killed while they are written.
        watch = VersionWatch(read_side)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch.run(stop))
        replayed = await replay_documents(settings, kafka_bootstrap, times=2)
        await asyncio.sleep(1)
        first.kill9()
        first.start()
        await asyncio.to_thread(first.wait_ready, supervised=True)
        await wait_for_stores(session, second, read_side)
        stop.set()
        await watcher
        assert replayed >= ORDERS + PRODUCT_CHANGES
        assert watch.samples >= 3
        assert watch.regressions == []

        # Search: a word of a description, and facets that count what the tables hold.
        status, found = await call(
            session, "GET", f"{second.url}/api/v1/products/search?q=zanzibar"
        )
        assert status == 200
        assert [p["product_id"] for p in found["products"]] == [PRODUCTS[7]]
        products = await table(session, second, "products_view")
        listed = [ProductView(**v) for v in products.values()]
        categories = Counter(
            view.product["category"] for view in listed if view.product and not view.deleted
        )
        status, everything = await call(
            session, "GET", f"{first.url}/api/v1/products/search?size=100"
        )
        assert status == 200
        assert everything["total"] == sum(categories.values())
        facets = {f["value"]: f["count"] for f in everything["facets"]["category"]}
        assert facets == dict(categories)
        status, document = await call(session, "GET", f"{first.url}/api/v1/products/P-007")
        assert status == 200
        assert "Zanzibar" in document["description"]
        customer = "customer-7"
        status, orders = await call(
            session, "GET", f"{second.url}/api/v1/orders/search?customer={customer}&size=100"
        )
        assert status == 200
        assert {o["order_id"] for o in orders["orders"]} == {
            key for key, doc in settled["orders-search"].items() if doc["customer_id"] == customer
        }

        # Rebuild every projection while readers keep reading.
        answers: Counter[int] = Counter()
        reading = asyncio.Event()

        async def read_continuously(worker: WorkerProcess) -> None:
            paths = [
                "/api/v1/products/search?q=mug",
                "/api/v1/products/search?category=kitchen&sort=price",
                "/api/v1/products/P-001",
                f"/api/v1/orders/search?customer={customer}",
            ]
            while not reading.is_set():
                for path in paths:
                    async with session.get(f"{worker.url}{path}") as response:
                        await response.read()
                        answers[response.status] += 1

        readers = [asyncio.create_task(read_continuously(w)) for w in workers for _ in range(2)]
        before = await stored_documents(read_side)
        for name in PROJECTIONS:
            output = await asyncio.to_thread(projections_cli, first, "rebuild", name)
            assert f"{name}: rebuilt into" in output
        reading.set()
        await asyncio.gather(*readers)
        assert set(answers) == {200}, answers
        assert answers[200] > 50
        assert await stored_documents(read_side) == before
        status_output = projections_cli(first, "status")
        assert status_output.count("000002") == len(PROJECTIONS), status_output
        print(
            f"\nprojections e2e: {ORDERS} orders, {PRODUCT_CHANGES} product changes, "
            f"{replayed} document records replayed twice, {watch.samples} version samples, "
            f"{sum(answers.values())} reads during the rebuilds, all 200"
        )
    finally:
        supervision.set()
        await supervisor

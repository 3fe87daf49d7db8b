"""Continuous order load on a deployment of workers, and the checks that afterwards nothing was
lost or done twice. Shared by the e2e tests that disturb the workers under load (chaos: kills;
scale-out: workers joining and leaving).

The invariants: every accepted order reaches its outcome (declined cards rejected, cancelled
orders cancelled, the rest confirmed); stock is conserved per sku and holds exactly the
confirmed lines; no order has two OrderConfirmed events on orders.events (read_committed; a
re-sent copy carries the id of the first) and the last outcome there is what the read model
says; no payment is authorized twice for one order, and only confirmed orders are charged;
the customers' lists converge on the outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.read_models import customer_lists
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers


@dataclass
class Cluster:
    """The workers of one deployment (its app id and topic prefix) and its payment gateway."""

    workers: list[WorkerProcess]
    sim_url: str
    prefix: str
    partitions: int


@contextlib.contextmanager
def running_cluster(
    count: int,
    directory: Path,
    *,
    name: str,
    kafka: str,
    partitions: int,
    database_url: str,
    **settings: str,
) -> Iterator[Cluster]:
    """``count`` workers of a deployment called ``name`` and a payment simulator of their own,
    started and ready (other ORDERFLOW_* settings by their lower-case names); all stopped after."""
    with PaymentSimulator(directory / "sim.log") as simulator:
        workers = platform_workers(
            count,
            directory,
            name=name,
            kafka=kafka,
            partitions=partitions,
            database_url=database_url,
            gateway=simulator.url,
            **settings,
        )
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.wait_ready(timeout=180)
            yield Cluster(workers, simulator.url, f"{name}.", partitions)
        finally:
            for worker in workers:
                worker.stop()


def alive(worker: WorkerProcess) -> bool:
    return worker.process is not None and worker.process.poll() is None


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def order_load(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    stop: asyncio.Event,
    placed: dict[str, Any],
    *,
    rate: int,
    skus: list[str],
    name: str,
    seed: int = 11,
) -> None:
    """Offer ``rate`` orders a second to live workers until ``stop``; a refused or failed
    POST is retried with the same Idempotency-Key. ``placed`` gets every accepted order (its
    kind: normal, decline or cancel; its lines; when it was accepted, by time.time())."""
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        for _ in range(rate):
            n += 1
            kind = rng.choices(["normal", "decline", "cancel"], [85, 10, 5])[0]
            lines = [
                {"sku": sku, "quantity": rng.randint(1, 3), "unit_price": 250}
                for sku in rng.sample(skus, rng.randint(1, 2))
            ]
            body = {
                "customer_id": f"{name}-{n % 40}",
                "currency": "USD",
                "lines": lines,
                "payment": {"token": "tok_decline" if kind == "decline" else "tok_visa"},
            }
            key = f"{name}-order-{n}"
            for _attempt in range(20):
                live = [w for w in cluster.workers if alive(w)]
                worker = rng.choice(live)
                try:
                    status, answer = await _post_idempotent(session, worker, body, key)
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.2)
                    continue
                if status == 503 and isinstance(answer, dict) and "retry_after" in answer:
                    await asyncio.sleep(min(answer["retry_after"], 5))  # the platform is behind
                    continue
                if status == 202:
                    placed[answer["order_id"]] = {
                        "kind": kind,
                        "lines": lines,
                        "accepted_at": time.time(),
                        **body,
                    }
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"order {key} was never accepted")
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def _post_idempotent(
    session: aiohttp.ClientSession, worker: WorkerProcess, body: Any, key: str
) -> tuple[int, Any]:
    """A client that retries with the same Idempotency-Key never creates a second order."""
    async with session.post(
        f"{worker.url}/api/v1/orders", json=body, headers={"Idempotency-Key": key}
    ) as response:
        answer = await response.json(content_type=None)
        if response.status == 503 and "Retry-After" in response.headers:
            answer = {**(answer or {}), "retry_after": int(response.headers["Retry-After"])}
        return response.status, answer


async def cancel_some(
    session: aiohttp.ClientSession, cluster: Cluster, placed: dict[str, Any]
) -> None:
    """Ask to cancel every order of kind "cancel", through any live worker."""
    for order_id, order in list(placed.items()):
        if order["kind"] != "cancel":
            continue
        for _attempt in range(100):
            worker = random.choice([w for w in cluster.workers if alive(w)])
            try:
                status, _ = await call(
                    session, "POST", f"{worker.url}/api/v1/orders/{order_id}/cancel", {}
                )
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if status in (202, 409):
                break
            await asyncio.sleep(0.3)


async def read_topic(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    """Every committed record of ``topic``, from the beginning to its end offsets now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    records = []
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        end = await consumer.end_offsets(assigned)
        remaining = set(assigned)
        while remaining:
            for batch in (await consumer.getmany(*remaining, timeout_ms=1000)).values():
                records.extend(batch)
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
    finally:
        await consumer.stop()
    return records


async def wait_for_stock(
    bootstrap: str, cluster: Cluster, skus: list[str], on_hand: int, within: float = 120
) -> None:
    """Wait until inventory.events says every sku holds ``on_hand`` units."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    levels: dict[str, int] = {}
    try:
        topic = f"{cluster.prefix}inventory.events"
        assigned = [TopicPartition(topic, p) for p in range(cluster.partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        deadline = time.monotonic() + within
        while any(levels.get(sku) != on_hand for sku in skus):
            assert time.monotonic() < deadline, f"stock levels after {within}s: {levels}"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    event = orjson.loads(record.value)
                    if event["__faust"]["ns"] == "orderflow.StockLevelChanged":
                        levels[event["sku"]] = event["on_hand"]
    finally:
        await consumer.stop()


async def stock_up(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    bootstrap: str,
    skus: list[str],
    stock: int,
    reason: str,
) -> None:
    """Give every sku ``stock`` units and wait until the inventory has them: adjustments and
    orders go through the outbox as separate aggregates, and an order relayed before the stock
    it needs would be rejected as out of stock."""
    first = next(w for w in cluster.workers if alive(w))
    for sku in skus:
        status, _ = await call(
            session, "POST", f"{first.url}/api/v1/inventory/{sku}/adjustments",
            {"delta": stock, "reason": reason},
        )  # fmt: skip
        assert status == 202
    await wait_for_stock(bootstrap, cluster, skus, stock)


async def await_outcomes(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    placed: dict[str, Any],
    within: float = 180,
) -> dict[str, dict[str, Any]]:
    """Each order's document once it has its outcome (CANCELLED for the orders asked to cancel,
    CONFIRMED or REJECTED for the others), read through the live workers in turn."""
    final: dict[str, dict[str, Any]] = {}
    for index, (order_id, order) in enumerate(placed.items()):
        deadline = time.monotonic() + within
        done = {"CANCELLED"} if order["kind"] == "cancel" else {"CONFIRMED", "REJECTED"}
        while True:
            live = [w for w in cluster.workers if alive(w)]
            worker = live[index % len(live)]
            try:
                status, view = await call(
                    session, "GET", f"{worker.url}/api/v1/orders/{order_id}?wait=30"
                )
            except (aiohttp.ClientError, TimeoutError) as error:
                status, view = 0, {"error": str(error)}  # restarting: try again
            if status == 200 and view["status"] in done:
                break
            await asyncio.sleep(0.1)
            assert time.monotonic() < deadline, f"{order_id} never reached an outcome: {view}"
        final[order_id] = view
    return final


async def check_invariants(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    bootstrap: str,
    placed: dict[str, Any],
    final: dict[str, dict[str, Any]],
    skus: list[str],
    stock: int,
) -> dict[str, float]:
    """Assert the invariants of the module's docstring; returns how long the customers'
    lists took to converge (``seconds_waiting_for_customer_lists``)."""
    live = [w for w in cluster.workers if alive(w)]
    api = f"{live[0].url}/api/v1"

    # Outcomes: declined cards are rejected, the rest confirmed or (if asked) cancelled.
    for order_id, order in placed.items():
        status = final[order_id]["status"]
        if order["kind"] == "decline":
            assert (status, final[order_id]["reason"]) == ("REJECTED", "payment_declined")
        elif order["kind"] == "cancel":
            assert status == "CANCELLED", final[order_id]
        else:
            assert status == "CONFIRMED", final[order_id]

    # Stock is conserved and holds exactly the confirmed orders' lines.
    held: dict[str, int] = defaultdict(int)
    for order_id, order in placed.items():
        if final[order_id]["status"] == "CONFIRMED":
            for line in order["lines"]:
                held[line["sku"]] += line["quantity"]
    for sku in skus:
        status, level = await call(session, "GET", f"{api}/inventory/{sku}")
        assert status == 200, (sku, level)
        assert level["on_hand"] + level["reserved"] == stock, (sku, level)
        assert level["reserved"] == held[sku], (sku, level, held[sku])

    # No payment was authorized twice; what is not confirmed is not charged.
    for order_id in placed:
        status, record = await call(
            session, "GET", f"{cluster.sim_url}/v1/orders/{order_id}/authorizations"
        )
        payments = record["authorizations"]
        assert len(payments) <= 1, payments
        charged = [p for p in payments if p["status"] == "authorized"]
        assert bool(charged) == (final[order_id]["status"] == "CONFIRMED"), (
            final[order_id],
            payments,
        )

    # The customers' lists converge on the orders' outcomes.
    by_customer: dict[str, dict[str, str]] = defaultdict(dict)
    for order_id, order in placed.items():
        by_customer[order["customer_id"]][order_id] = final[order_id]["status"]
    waiting = time.monotonic()
    listed = await customer_lists(session, api, by_customer)
    lists_trailed = time.monotonic() - waiting
    for customer_id, expected in by_customer.items():
        got = listed[customer_id]
        assert {k: got.get(k) for k in expected} == expected, customer_id

    # orders.events: one OrderConfirmed event per confirmed order (copies share its id), and
    # the last outcome of each order is what the read model says.
    confirmed_ids: dict[str, set[str]] = defaultdict(set)
    last_outcome: dict[str, tuple[int, str]] = {}
    outcomes = {"OrderConfirmed": "CONFIRMED", "OrderRejected": "REJECTED",
                "OrderCancelled": "CANCELLED"}  # fmt: skip
    topic = f"{cluster.prefix}orders.events"
    for record in await read_topic(bootstrap, topic, cluster.partitions):
        event = orjson.loads(record.value)
        kind = event["__faust"]["ns"].removeprefix("orderflow.")
        if kind == "OrderConfirmed":
            confirmed_ids[event["order_id"]].add(event["event_id"])
        if kind in outcomes:
            previous = last_outcome.get(event["order_id"], (0, ""))
            if event["version"] >= previous[0]:
                last_outcome[event["order_id"]] = (event["version"], outcomes[kind])
    assert {k: v for k, v in confirmed_ids.items() if len(v) > 1} == {}
    assert {o: last_outcome[o][1] for o in placed} == {o: final[o]["status"] for o in placed}
    return {"seconds_waiting_for_customer_lists": round(lists_trailed, 1)}

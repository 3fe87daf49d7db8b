"""The whole order lifecycle on real Kafka, two worker processes and the payment simulator.

Several hundred orders mix in-stock lines, a scarce sku, declined cards, amounts over the
gateway's limit, gateway time-outs and cancellations. One worker is killed with SIGKILL while
orders keep coming and is restarted. Afterwards every order has reached its outcome, stock is
conserved per sku, the read models agree with the sagas, and any worker answers for any order.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import auth
from tests.support.read_models import customer_lists
from tests.support.workers import (
    PaymentSimulator,
    WorkerProcess,
    platform_workers,
    running,
    supervise,
)

PARTITIONS = 4
NORMAL_SKUS = [f"SKU-{c}" for c in "ABCDEF"]
NORMAL_STOCK = 2_000
SCARCE_SKU = "SKU-SCARCE"
SCARCE_STOCK = 5
GATEWAY_LIMIT = 500_000


@dataclass
class PlacedOrder:
    order_id: str
    customer_id: str
    kind: str  # normal, scarce, decline, over_limit, timeout, cancel
    lines: list[dict[str, Any]]
    final: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def payment_simulator(tmp_path: Path) -> Iterator[str]:
    with PaymentSimulator(
        tmp_path / "payment-sim.log", "--decline-over", str(GATEWAY_LIMIT)
    ) as sim:
        yield sim.url


@pytest.fixture
def workers(
    kafka_bootstrap: str,
    database_url: str,
    run_id: str,
    tmp_path: Path,
    payment_simulator: str,
) -> Iterator[list[WorkerProcess]]:
    # Sagas outlive the fail-over of a killed worker (120 s): time-outs have their own tests;
    # this one checks that nothing is lost.
    processes = platform_workers(
        2,
        tmp_path,
        name=f"{run_id}-saga",
        kafka=kafka_bootstrap,
        partitions=PARTITIONS,
        database_url=database_url,
        gateway=payment_simulator,
        session_timeout="6",
        payment_timeout="0.5",
        saga_step_timeout="120",
    )
    with running(processes):
        yield processes


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=40)
    ) as client:
        yield client


def order_body(kind: str, customer_id: str, rng: random.Random) -> dict[str, Any]:
    token = {"decline": "tok_decline", "timeout": "tok_timeout"}.get(kind, "tok_visa")
    if kind == "scarce":
        lines = [{"sku": SCARCE_SKU, "quantity": 2, "unit_price": 1500}]
    else:
        skus = rng.sample(NORMAL_SKUS, rng.randint(1, 3))
        lines = [{"sku": s, "quantity": rng.randint(1, 3), "unit_price": 999} for s in skus]
    if kind == "over_limit":
        lines[0]["unit_price"] = GATEWAY_LIMIT
    return {
        "customer_id": customer_id,
        "currency": "USD",
        "lines": lines,
        "payment": {"token": token},
    }


async def post_json(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        return response.status, await response.json(content_type=None)


async def adjust(session: aiohttp.ClientSession, worker: WorkerProcess, sku: str, n: int) -> None:
    status, body = await post_json(
        session, f"{worker.url}/api/v1/inventory/{sku}/adjustments", {"delta": n, "reason": "seed"}
    )
    assert status == 202, body


async def wait_for_stock(
    session: aiohttp.ClientSession, worker: WorkerProcess, sku: str, on_hand: int
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status, body = await get_json(session, f"{worker.url}/api/v1/inventory/{sku}")
        if status == 200 and body["on_hand"] == on_hand:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"stock of {sku} never reached {on_hand}")


async def cancel_soon(
    session: aiohttp.ClientSession, live: list[WorkerProcess], order: PlacedOrder
) -> None:
    """Cancel as soon as the order is known to the read side (retrying a 404 until then)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        worker = live[0]
        try:
            status, body = await post_json(
                session, f"{worker.url}/api/v1/orders/{order.order_id}/cancel", {"reason": "e2e"}
            )
        except aiohttp.ClientError:
            status, body = 0, None
        if status == 202:
            return
        assert status in (0, 404, 503), (status, body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"could not cancel {order.order_id}")


async def test_orders_reach_their_outcome_through_a_worker_crash(
    workers: list[WorkerProcess], session: aiohttp.ClientSession, payment_simulator: str
) -> None:
    first, second = workers
    rng = random.Random(7)
    # As Kubernetes would: a worker that exits (its stall watchdog) is started again.
    supervision = asyncio.Event()
    supervisor = asyncio.create_task(supervise(workers, supervision, grace=10))
    try:
        for sku in NORMAL_SKUS:
            await adjust(session, first, sku, NORMAL_STOCK)
        await adjust(session, second, SCARCE_SKU, SCARCE_STOCK)
        for sku in NORMAL_SKUS:
            await wait_for_stock(session, second, sku, NORMAL_STOCK)
        await wait_for_stock(session, first, SCARCE_SKU, SCARCE_STOCK)

        kinds = (
            ["normal"] * 200
            + ["scarce"] * 12
            + ["decline"] * 20
            + ["over_limit"] * 10
            + ["timeout"] * 10
            + ["cancel"] * 30
        )
        rng.shuffle(kinds)
        orders: list[PlacedOrder] = []
        live = [first, second]
        cancellations: list[asyncio.Task[None]] = []
        kill_at, restart_at = len(kinds) // 3, len(kinds) // 2

        for index, kind in enumerate(kinds):
            if index == kill_at:
                second.kill9()
                live = [first]
            if index == restart_at and (
                second.process is None or second.process.poll() is not None
            ):
                second.start()
            if index > restart_at and second not in live and await is_ready(session, second):
                live = [first, second]
            worker = live[index % len(live)]
            customer_id = f"customer-{index % 25}"
            body = order_body(kind, customer_id, rng)
            status, answer = await post_json(session, f"{worker.url}/api/v1/orders", body)
            assert status == 202, answer
            assert answer["status"] == "PENDING"
            order = PlacedOrder(answer["order_id"], customer_id, kind, body["lines"])
            orders.append(order)
            if kind == "cancel":
                cancellations.append(asyncio.create_task(cancel_soon(session, live, order)))
        await asyncio.gather(*cancellations)
        await asyncio.to_thread(second.wait_ready, supervised=True)

        # Every order reaches an outcome; read it through alternating workers.
        for index, order in enumerate(orders):
            worker = workers[index % 2]
            deadline = time.monotonic() + 180
            while True:
                try:
                    status, view = await get_json(
                        session, f"{worker.url}/api/v1/orders/{order.order_id}?wait=30"
                    )
                except aiohttp.ClientError as error:  # a worker being restarted
                    status, view = 0, {"error": str(error)}
                if status == 200 and view["status"] != "PENDING":
                    break
                assert time.monotonic() < deadline, f"{order.kind} order still pending: {view}"
                await asyncio.sleep(0.2)
            order.final = view

        outcomes = Counter((o.kind, o.final["status"], o.final["reason"]) for o in orders)
        for order in orders:
            status, reason = order.final["status"], order.final["reason"]
            match order.kind:
                case "normal":
                    assert status == "CONFIRMED", order.final
                case "cancel":
                    assert status == "CANCELLED", order.final
                case "decline" | "over_limit" | "timeout":
                    assert (status, reason) == ("REJECTED", "payment_declined"), order.final
                case "scarce":
                    assert (status, reason) in {("CONFIRMED", None), ("REJECTED", "out_of_stock")}
        scarce_confirmed = sum(
            1 for o in orders if o.kind == "scarce" and o.final["status"] == "CONFIRMED"
        )
        assert scarce_confirmed == SCARCE_STOCK // 2, outcomes
        detail = next(
            o.final["detail"]
            for o in orders
            if o.kind == "scarce" and o.final["status"] == "REJECTED"
        )
        assert detail.startswith(f"{SCARCE_SKU}: requested 2, available ")

        # Stock is conserved: what confirmed orders hold is reserved, everything else is on hand.
        held: dict[str, int] = defaultdict(int)
        for order in orders:
            if order.final["status"] == "CONFIRMED":
                for line in order.lines:
                    held[line["sku"]] += line["quantity"]
        for sku, seeded in [*((s, NORMAL_STOCK) for s in NORMAL_SKUS), (SCARCE_SKU, SCARCE_STOCK)]:
            for worker in workers:
                status, level = await get_json(session, f"{worker.url}/api/v1/inventory/{sku}")
                assert status == 200
                assert level["reserved"] == held[sku], (sku, level, held[sku])
                assert level["on_hand"] + level["reserved"] == seeded, (sku, level)

        # Any worker answers for any order, and both give the same document; the saga agrees.
        for order in orders:
            views = [
                await get_json(session, f"{w.url}/api/v1/orders/{order.order_id}") for w in workers
            ]
            assert views[0] == views[1] == (200, order.final)
            status, saga = await get_json(session, f"{first.url}/api/v1/sagas/{order.order_id}")
            assert status == 200
            assert saga["order_status"] == order.final["status"]
            assert "payment_token" not in saga

        # The customers' lists match the orders, once they have converged.
        by_customer: dict[str, dict[str, str]] = defaultdict(dict)
        for order in orders:
            by_customer[order.customer_id][order.order_id] = order.final["status"]
        listed = await customer_lists(session, f"{second.url}/api/v1", by_customer)
        for customer_id, expected in by_customer.items():
            assert listed[customer_id] == expected, customer_id

        # The gateway authorized each order at most once; what is not confirmed is not charged.
        for order in orders:
            status, record = await get_json(
                session, f"{payment_simulator}/v1/orders/{order.order_id}/authorizations"
            )
            assert status == 200
            payments = record["authorizations"]
            assert len(payments) <= 1, payments
            if order.final["status"] == "CONFIRMED":
                assert [p["status"] for p in payments] == ["authorized"]
                assert payments[0]["payment_id"] == order.final["payment_id"]
            else:
                assert all(p["status"] == "voided" for p in payments), (order.final, payments)
    finally:
        supervision.set()
        await supervisor


async def is_ready(session: aiohttp.ClientSession, worker: WorkerProcess) -> bool:
    try:
        status, _ = await get_json(session, f"{worker.url}/readyz?strict=1")
    except aiohttp.ClientError:
        return False
    return status == 200

"""Failure handling on a real worker, Kafka and the payment simulator.

- Poison messages (garbage bytes, a schema-invalid record, a record the handler refuses) land
  in the DLQ with headers that tell the story, while the agent goes on with the next orders.
- The network path to the payment gateway is cut under load: the breaker opens (in /metrics and
  /readyz), no order is rejected for it, and when the path is back every order is confirmed.
- A void that failed while the gateway was away is dead-lettered; replayed (twice) after the
  gateway is back, it voids the payment.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from orderflow import schemas
from tests.support import auth
from tests.support.proxy import TcpRelay
from tests.support.workers import (
    REPO,
    PaymentSimulator,
    WorkerProcess,
    free_port,
    platform_workers,
)

SKU = "SKU-FAIL"


class Platform:
    def __init__(self, worker: WorkerProcess, relay: TcpRelay, sim_url: str, prefix: str) -> None:
        self.worker = worker
        self.relay = relay
        self.sim_url = sim_url
        self.prefix = prefix
        self.api = f"{worker.url}/api/v1"
        self.env = worker.env


@pytest.fixture
async def platform(
    kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path
) -> AsyncIterator[Platform]:
    name = f"{run_id}-fail-{uuid.uuid4().hex[:6]}"
    with PaymentSimulator(tmp_path / "sim.log") as simulator:
        relay = TcpRelay("127.0.0.1", simulator.port, free_port())
        await relay.start()
        [worker] = platform_workers(
            1,
            tmp_path,
            name=name,
            kafka=kafka_bootstrap,
            partitions=2,
            database_url=database_url,
            gateway=relay.url,
            payment_timeout="1",
            saga_step_timeout="60",
            retry_max_attempts="3",
            retry_base_delay="0.05",
            breaker_failure_threshold="3",
            breaker_open_seconds="2",
        )
        worker.start()
        try:
            await asyncio.to_thread(worker.wait_ready)
            yield Platform(worker, relay, simulator.url, f"{name}.")
        finally:
            await asyncio.to_thread(worker.stop)
            await relay.stop()


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except json.JSONDecodeError:
            return response.status, text


async def place(session: aiohttp.ClientSession, api: str, token: str = "tok_visa") -> str:
    body = {
        "customer_id": "c-fail",
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": 1, "unit_price": 100}],
        "payment": {"token": token},
    }
    status, accepted = await call(session, "POST", f"{api}/orders", body)
    assert status == 202, accepted
    return str(accepted["order_id"])


async def outcome(session: aiohttp.ClientSession, api: str, order_id: str) -> dict[str, Any]:
    status, view = await call(session, "GET", f"{api}/orders/{order_id}?wait=30")
    assert status == 200, view
    return dict(view)


async def stock(session: aiohttp.ClientSession, api: str, quantity: int) -> None:
    status, _ = await call(
        session, "POST", f"{api}/inventory/{SKU}/adjustments", {"delta": quantity, "reason": "t"}
    )
    assert status == 202


async def dead_letters(
    session: aiohttp.ClientSession, api: str, topic: str, *, key: str | None = None
) -> list[dict[str, Any]]:
    query = f"?key={key}" if key else ""
    status, answer = await call(session, "GET", f"{api}/admin/dlq/{topic}{query}")
    if status == 404:
        return []
    assert status == 200, answer
    return list(answer["records"])


async def test_poison_messages_are_dead_lettered_and_the_agent_goes_on(
    platform: Platform, kafka_bootstrap: str
) -> None:
    topic = f"{platform.prefix}orders.commands"
    good = schemas.PlaceOrder(
        **schemas.envelope("p-2"),
        order_id="p-2",
        customer_id="c",
        currency="USD",
        lines=[schemas.OrderLine(sku=SKU, quantity=1, unit_price=1)],
        payment_token="tok",
    )
    invalid = good.dumps().replace(b'"payment_token":"tok",', b"")
    refused = schemas.AdjustStock(**schemas.envelope(SKU), sku=SKU, delta=1, reason="misrouted")
    poison = {"p-1": b"\x00\x01 not json", "p-2": invalid, "p-3": refused.dumps()}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = {
            k: await producer.send_and_wait(topic, v, key=k.encode()) for k, v in poison.items()
        }
    finally:
        await producer.stop()

    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        await stock(session, platform.api, 10)
        order_id = await place(session, platform.api)
        assert (await outcome(session, platform.api, order_id))["status"] == "CONFIRMED"

        deadline = time.monotonic() + 30
        while len(letters := await dead_letters(session, platform.api, f"{topic}.dlq")) < 3:
            assert time.monotonic() < deadline, letters
            await asyncio.sleep(0.2)
        status, listing = await call(session, "GET", f"{platform.api}/admin/dlq")
        assert status == 200
        assert {"topic": f"{topic}.dlq", "records": 3} in listing["topics"]

    by_key = {letter["key"]: letter for letter in letters}
    assert set(by_key) == set(poison)
    for key, letter in by_key.items():
        headers = letter["headers"]
        assert headers["dlq.error.type"] == "SchemaError"
        assert headers["dlq.handler"] == "saga"
        assert headers["dlq.attempts"] == "1"  # permanent: not retried
        assert headers["dlq.origin.topic"] == topic
        assert int(headers["dlq.origin.partition"]) == sent[key].partition
        assert int(headers["dlq.origin.offset"]) == sent[key].offset
        assert headers["dlq.first_failure_at"] <= headers["dlq.last_failure_at"]
    assert "payment_token" in by_key["p-2"]["headers"]["dlq.error.message"]
    assert "not a message of the order saga" in by_key["p-3"]["headers"]["dlq.error.message"]
    assert by_key["p-2"]["value"] == invalid.decode()  # the original bytes, untouched

    # The CLI reads the same topic straight from Kafka.
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orderflow.cli", "dlq", "show", f"{topic}.dlq", "--json"],
        cwd=REPO,
        env={**os.environ, **{k: v for k, v in platform.env.items() if k.startswith("ORDERFLOW")}},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert {record["key"] for record in json.loads(shown.stdout)} == set(poison)


async def metric(session: aiohttp.ClientSession, worker: WorkerProcess, sample: str) -> float:
    async with session.get(f"{worker.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
    return 0.0


async def test_a_gateway_outage_opens_the_breaker_and_rejects_no_order(
    platform: Platform,
) -> None:
    state = 'orderflow_circuit_breaker_state{breaker="payment_gateway"}'
    opened = 'orderflow_circuit_breaker_opened_total{breaker="payment_gateway"}'
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        await stock(session, platform.api, 100)
        before = [await place(session, platform.api) for _ in range(5)]
        for order_id in before:
            assert (await outcome(session, platform.api, order_id))["status"] == "CONFIRMED"

        await platform.relay.stop()
        during = [await place(session, platform.api) for _ in range(20)]
        deadline = time.monotonic() + 30
        while await metric(session, platform.worker, opened) < 1:
            assert time.monotonic() < deadline, "the breaker never opened"
            await asyncio.sleep(0.2)
        status, ready = await call(session, "GET", f"{platform.worker.url}/readyz")
        assert ready["breakers"]["payment_gateway"] in ("open", "half_open")
        await asyncio.sleep(3)  # several breaker cycles: the sagas must keep waiting
        for order_id in during:
            status, view = await call(session, "GET", f"{platform.api}/orders/{order_id}")
            assert view["status"] == "PENDING", view

        await platform.relay.start()
        for order_id in during:
            view = await outcome(session, platform.api, order_id)
            assert view["status"] == "CONFIRMED", view
        assert await metric(session, platform.worker, state) == 0.0
        status, ready = await call(session, "GET", f"{platform.worker.url}/readyz")
        assert ready["breakers"]["payment_gateway"] == "closed"
        status, saga = await call(session, "GET", f"{platform.api}/sagas/{during[0]}")
        assert (status, saga["status"]) == (200, "CONFIRMED")


async def test_a_dead_lettered_void_is_replayed_once_the_gateway_is_back(
    platform: Platform,
) -> None:
    dlq_topic = f"{platform.prefix}payments.commands.dlq"
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        await stock(session, platform.api, 10)
        order_id = await place(session, platform.api)
        assert (await outcome(session, platform.api, order_id))["status"] == "CONFIRMED"

        await platform.relay.stop()
        status, _ = await call(session, "POST", f"{platform.api}/orders/{order_id}/cancel")
        assert status == 202
        deadline = time.monotonic() + 30
        while not (letters := await dead_letters(session, platform.api, dlq_topic, key=order_id)):
            assert time.monotonic() < deadline, "the void was never dead-lettered"
            await asyncio.sleep(0.2)
        assert letters[0]["headers"]["dlq.handler"] == "payments"
        assert letters[0]["headers"]["dlq.attempts"] == "3"
        assert (await outcome(session, platform.api, order_id))["status"] == "CANCELLED"

        async def payments() -> list[str]:
            status, record = await call(
                session, "GET", f"{platform.sim_url}/v1/orders/{order_id}/authorizations"
            )
            assert status == 200
            return [p["status"] for p in record["authorizations"]]

        assert await payments() == ["authorized"]  # the void did not reach the gateway

        await platform.relay.start()
        # An operator replays once the dependency is back: the breaker no longer refuses calls.
        deadline = time.monotonic() + 30
        while (await call(session, "GET", f"{platform.worker.url}/readyz"))[1]["breakers"][
            "payment_gateway"
        ] == "open":
            assert time.monotonic() < deadline, "the breaker stayed open"
            await asyncio.sleep(0.2)
        replay = f"{platform.api}/admin/dlq/{dlq_topic}/replay"
        status, dry = await call(session, "POST", replay, {"key": order_id, "dry_run": True})
        assert (status, len(dry["replayed"])) == (200, 1)
        assert await payments() == ["authorized"]  # a dry run sends nothing
        for _ in range(2):  # replaying twice is safe
            status, done = await call(session, "POST", replay, {"key": order_id})
            assert (status, len(done["replayed"])) == (200, 1)
        deadline = time.monotonic() + 30
        while await payments() != ["voided"]:
            assert time.monotonic() < deadline, await payments()
            await asyncio.sleep(0.2)

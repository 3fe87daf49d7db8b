"""Reliable intake end to end: a worker on a Kafka of this module's own, the real PostgreSQL
and the payment simulator.

- Kafka is stopped while orders keep arriving: every POST still gets 202, the rows wait in the
  outbox, and once Kafka is back every order is confirmed, none twice.
- Rows that a relay crash left published-but-unmarked are sent again: nothing changes.
- 50 concurrent requests with one Idempotency-Key make one order; a reused key is refused.
- With PostgreSQL unreachable, POST answers 503 problem+json.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.conftest import INFRA, fresh_database
from tests.support import auth
from tests.support.read_models import customer_lists
from tests.support.workers import PaymentSimulator, WorkerProcess, free_port, platform_workers

SKU = "SKU-OUTBOX"


class PrivateKafka:
    """A Kafka broker of this module's own, so that stopping it disturbs no other test."""

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="orderflow-kafka-"))
        self.port = free_port()
        self.env = {
            **os.environ,
            "ORDERFLOW_STATE_DIR": str(self.state),
            "ORDERFLOW_KAFKA_PORT": str(self.port),
            "ORDERFLOW_KAFKA_CONTROLLER_PORT": str(free_port()),
        }
        self.bootstrap = f"127.0.0.1:{self.port}"

    def infra(self, action: str) -> None:
        subprocess.run(
            [str(INFRA), action, "--only", "kafka"], env=self.env, check=True, timeout=300
        )


@pytest.fixture(scope="module")
def platform(
    postgres: str, run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("intake")
    kafka = PrivateKafka()
    kafka.infra("up")
    try:
        with (
            fresh_database(postgres, f"orderflow_{run_id}_intake") as database_url,
            PaymentSimulator(tmp / "sim.log") as simulator,
        ):
            [worker] = platform_workers(
                1,
                tmp,
                name=f"{run_id}-intake",
                kafka=kafka.bootstrap,
                partitions=2,
                database_url=database_url,
                gateway=simulator.url,
                saga_step_timeout="300",
            )
            worker.start()
            try:
                worker.wait_ready()
                yield {
                    "kafka": kafka,
                    "worker": worker,
                    "api": f"{worker.url}/api/v1",
                    "database_url": database_url,
                    "prefix": f"{run_id}-intake.",
                }
            finally:
                worker.stop()
    finally:
        kafka.infra("down")


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, **headers: str
) -> tuple[int, Any, dict[str, str]]:
    async with session.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        return response.status, await response.json(content_type=None)


def order(customer: str = "c-intake", quantity: int = 1) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": quantity, "unit_price": 700}],
        "payment": {"token": "tok_visa"},
    }


async def confirmed_events(bootstrap: str, topic: str) -> Counter[str]:
    """How many OrderConfirmed events each order has on orders.events."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    try:
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    if b'"ns":"orderflow.OrderConfirmed"' in record.value:
                        counts[record.key.decode()] += 1
    finally:
        await consumer.stop()
    return counts


async def wait_confirmed(session: aiohttp.ClientSession, api: str, order_ids: list[str]) -> None:
    for order_id in order_ids:
        status, view = await get(session, f"{api}/orders/{order_id}?wait=30")
        assert status == 200, view
        assert view["status"] == "CONFIRMED", view


async def test_orders_accepted_while_kafka_is_down_are_processed_once_it_is_back(
    platform: dict[str, Any],
) -> None:
    api, kafka = platform["api"], platform["kafka"]
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        status, _, _ = await post(
            session, f"{api}/inventory/{SKU}/adjustments", {"delta": 1000, "reason": "seed"}
        )
        assert status == 202
        before = []
        for _ in range(10):
            status, accepted, _ = await post(session, f"{api}/orders", order())
            assert status == 202
            before.append(accepted["order_id"])
        await wait_confirmed(session, api, before)

        kafka.infra("down")
        during = []
        for _ in range(40):
            status, accepted, _ = await post(session, f"{api}/orders", order())
            assert status == 202, accepted
            during.append(accepted["order_id"])
        status, lag = await get(session, f"{api}/admin/outbox")
        assert status == 200
        assert lag["pending"] >= len(during)
        # Read-your-writes while the pipeline is stalled: the intake knows the order.
        status, pending = await get(session, f"{api}/orders/{during[-1]}")
        assert (status, pending["status"]) == (200, "PENDING")

        await asyncio.sleep(5)  # an outage, not a blip
        kafka.infra("up")
        await wait_confirmed(session, api, during)
        deadline = time.monotonic() + 30
        while (await get(session, f"{api}/admin/outbox"))[1]["pending"]:
            assert time.monotonic() < deadline, "the outbox did not drain"
            await asyncio.sleep(0.2)

        status, level = await get(session, f"{api}/inventory/{SKU}")
        assert level["reserved"] == len(before) + len(during)
        assert level["on_hand"] + level["reserved"] == 1000

    confirmations = await confirmed_events(kafka.bootstrap, f"{platform['prefix']}orders.events")
    assert {order_id: confirmations[order_id] for order_id in before + during} == dict.fromkeys(
        before + during, 1
    )


async def test_rows_published_again_after_a_relay_crash_change_nothing(
    platform: dict[str, Any],
) -> None:
    api = platform["api"]
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        placed = []
        for _ in range(10):
            status, accepted, _ = await post(session, f"{api}/orders", order(quantity=2))
            assert status == 202
            placed.append(accepted["order_id"])
        await wait_confirmed(session, api, placed)
        status, stock_before = await get(session, f"{api}/inventory/{SKU}")
        sagas_before = [(await get(session, f"{api}/sagas/{o}"))[1] for o in placed]

        # What a relay killed after the broker's acknowledgement and before its commit leaves.
        connection = await asyncpg.connect(platform["database_url"])
        try:
            await connection.execute(
                "UPDATE outbox SET published_at = NULL WHERE aggregate_id = ANY($1::text[])",
                placed,
            )
        finally:
            await connection.close()
        deadline = time.monotonic() + 30
        while (await get(session, f"{api}/admin/outbox"))[1]["pending"]:
            assert time.monotonic() < deadline, "the outbox did not drain"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # let the repeated commands reach the saga

        assert (await get(session, f"{api}/inventory/{SKU}"))[1] == stock_before
        assert [(await get(session, f"{api}/sagas/{o}"))[1] for o in placed] == sagas_before

    confirmations = await confirmed_events(
        platform["kafka"].bootstrap, f"{platform['prefix']}orders.events"
    )
    assert {o: confirmations[o] for o in placed} == dict.fromkeys(placed, 1)


async def test_one_idempotency_key_makes_one_order(platform: dict[str, Any]) -> None:
    api = platform["api"]
    key = uuid.uuid4().hex
    body = order(customer="c-idempotent")
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        answers = await asyncio.gather(
            *(post(session, f"{api}/orders", body, **{"Idempotency-Key": key}) for _ in range(50))
        )
        accepted = [(s, b) for s, b, _ in answers if s == 202]
        assert all(s in (202, 409) for s, _, _ in answers), answers
        assert accepted
        assert len({b["order_id"] for _, b in accepted}) == 1
        order_id = accepted[0][1]["order_id"]

        status, again, headers = await post(
            session, f"{api}/orders", body, **{"Idempotency-Key": key}
        )
        assert (status, again["order_id"]) == (202, order_id)
        assert headers["Idempotent-Replayed"] == "true"
        assert headers["Location"] == f"/api/v1/orders/{order_id}"

        status, problem, headers = await post(
            session, f"{api}/orders", order(customer="c-idempotent", quantity=3),
            **{"Idempotency-Key": key},
        )  # fmt: skip
        assert status == 422
        assert headers["Content-Type"] == "application/problem+json"
        assert "different request" in problem["detail"]

        await wait_confirmed(session, api, [order_id])
        expected = {"c-idempotent": {order_id: "CONFIRMED"}}
        listed = await customer_lists(session, api, expected)
        assert listed == expected


async def test_without_the_database_a_post_is_refused_with_503(
    platform: dict[str, Any], run_id: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        "orderflow.app",
        {
            "ORDERFLOW_APP_ID": f"{run_id}-nodb",
            "ORDERFLOW_TOPIC_PREFIX": f"{run_id}.nodb.",
            "ORDERFLOW_BROKER_URL": f"kafka://{platform['kafka'].bootstrap}",
            "ORDERFLOW_DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/none",
            "ORDERFLOW_DATABASE_TIMEOUT": "1",
            "ORDERFLOW_TOPIC_PARTITIONS": "2",
            "ORDERFLOW_WEB_PORT": str(free_port()),
            "ORDERFLOW_DATA_DIR": str(tmp_path / "data"),
        },
        tmp_path / "worker.log",
    )
    worker.start()
    try:
        worker.wait_ready()
        async with aiohttp.ClientSession(headers=auth.admin()) as session:
            status, problem, headers = await post(session, f"{worker.url}/api/v1/orders", order())
        assert status == 503
        assert headers["Content-Type"] == "application/problem+json"
        assert "not accepted" in problem["detail"]
    finally:
        worker.stop()

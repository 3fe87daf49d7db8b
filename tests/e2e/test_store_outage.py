"""Elasticsearch goes away while orders keep coming and a third worker joins the group.

The write side must not notice: every order is confirmed during the outage, and the rebalance
the new worker causes completes although the Elasticsearch sinks are retrying (they give their
batches up for it instead of holding the group; a stuck rebalance would make the stall watchdog
end workers, which the test rules out). Once Elasticsearch is reachable again, every order is
searchable with its final status: nothing was lost while the projection waited.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from elasticsearch import AsyncElasticsearch

from tests.support import auth
from tests.support.proxy import TcpRelay
from tests.support.workers import PaymentSimulator, WorkerProcess, free_port, platform_workers

PARTITIONS = 4
SKU = "SKU-OUTAGE"
CUSTOMER = "c-outage"


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def place(session: aiohttp.ClientSession, api: str) -> str:
    body = {
        "customer_id": CUSTOMER,
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": 1, "unit_price": 500}],
        "payment": {"token": "tok_visa"},
    }
    status, answer = await call(session, "POST", f"{api}/orders", body)
    assert status == 202, answer
    return str(answer["order_id"])


async def confirmed(session: aiohttp.ClientSession, api: str, order_ids: list[str]) -> None:
    for order_id in order_ids:
        status, view = await call(session, "GET", f"{api}/orders/{order_id}?wait=30")
        assert (status, view["status"]) == (200, "CONFIRMED"), view


def alive(workers: list[WorkerProcess]) -> dict[str, int | None]:
    return {w.name: w.process.poll() if w.process else -1 for w in workers}


async def test_a_store_outage_holds_back_its_projection_and_nothing_else(
    kafka_bootstrap: str, database_url: str, elasticsearch: str, mongodb: str, run_id: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    name = f"{run_id}-outage"
    target = urlsplit(elasticsearch)
    relay = TcpRelay(target.hostname or "127.0.0.1", target.port or 9200, free_port())
    await relay.start()
    with PaymentSimulator(tmp_path / "sim.log") as simulator:
        workers = platform_workers(
            3,
            tmp_path,
            name=name,
            kafka=kafka_bootstrap,
            partitions=PARTITIONS,
            database_url=database_url,
            gateway=simulator.url,
            session_timeout="6",
            elasticsearch_url=relay.url,
            mongodb_url=mongodb,
        )
        first, second, third = workers
        api = f"{first.url}/api/v1"
        try:
            for worker in (first, second):
                worker.start()
            for worker in (first, second):
                await asyncio.to_thread(worker.wait_ready)
            async with aiohttp.ClientSession(
                headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
            ) as session:
                status, _ = await call(
                    session, "POST", f"{api}/inventory/{SKU}/adjustments",
                    {"delta": 1_000, "reason": "outage test"},
                )  # fmt: skip
                assert status == 202
                for _ in range(600):
                    status, level = await call(session, "GET", f"{api}/inventory/{SKU}")
                    if status == 200 and level["on_hand"] == 1_000:
                        break
                    await asyncio.sleep(0.1)
                before = [await place(session, api) for _ in range(10)]
                await confirmed(session, api, before)

                await relay.stop()  # Elasticsearch is unreachable from here on
                during = [await place(session, api) for _ in range(20)]
                third.start()  # a rebalance while the sinks retry
                await asyncio.to_thread(third.wait_ready, 120)
                await confirmed(session, api, during)
                # Long enough for a rebalance stuck behind a sink to trip the 30 s watchdog.
                await asyncio.sleep(35)
                assert alive(workers) == {w.name: None for w in workers}
                for worker in workers:
                    status, ready = await call(session, "GET", f"{worker.url}/readyz?strict=1")
                    assert status == 200, ready
                search = f"{api}/orders/search?customer={CUSTOMER}&size=100"
                status, gone = await call(session, "GET", search)
                assert status == 503, gone  # searching needs the store: a clear 503

                await relay.start()
                expected = dict.fromkeys(before + during, "CONFIRMED")
                deadline = time.monotonic() + 120
                found: dict[str, str] = {}
                while found != expected:
                    assert time.monotonic() < deadline, (len(found), len(expected))
                    await asyncio.sleep(0.5)
                    status, page = await call(session, "GET", search)
                    if status == 200:
                        found = {o["order_id"]: o["status"] for o in page["orders"]}
                # The sinks caught up: no watchdog takes the wait while held for a stall.
                await asyncio.sleep(12)
                assert alive(workers) == {w.name: None for w in workers}
        finally:
            for worker in workers:
                await asyncio.to_thread(worker.stop)
            await relay.stop()
            client = AsyncElasticsearch(elasticsearch)
            try:
                await client.options(ignore_status=404).indices.delete(index=f"{name}-*")
            finally:
                await client.close()

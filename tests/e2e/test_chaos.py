"""Chaos: three workers under continuous order load; a random one is killed with SIGKILL every
few seconds and restarted, for two minutes, in each processing guarantee.

Afterwards every order has reached its outcome, stock is conserved per sku, no order has two
OrderConfirmed events on orders.events (read_committed; a re-sent copy carries the id of the
first), no payment was authorized twice for one order, and the read models match the events.
The run's figures (orders, kills, rebalances, time to recover) are written to
``chaos-<guarantee>.json`` in the test's directory and printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_table_recovery import EXACTLY_ONCE_LOSES_UPDATES
from tests.support import auth
from tests.support.load import (
    Cluster,
    alive,
    await_outcomes,
    cancel_some,
    check_invariants,
    order_load,
    running_cluster,
    stock_up,
)
from tests.support.workers import supervise

PARTITIONS = 6
WORKERS = 3
SKUS = [f"SKU-C{i}" for i in range(8)]
STOCK = 100_000
CHAOS_SECONDS = float(os.environ.get("ORDERFLOW_CHAOS_SECONDS", "120"))
KILL_EVERY = (4.0, 8.0)  # seconds between kills, drawn uniformly
RATE = 15  # orders per second offered


@pytest.fixture(
    params=["at_least_once", pytest.param("exactly_once", marks=EXACTLY_ONCE_LOSES_UPDATES)]
)
def cluster(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    database_url: str,
    run_id: str,
    tmp_path: Path,
) -> Iterator[Cluster]:
    guarantee: str = request.param
    # Sagas must outlive the fail-overs: this test is about losing nothing.
    with running_cluster(
        WORKERS,
        tmp_path,
        name=f"{run_id}-chaos-{guarantee.replace('_', '-')}",
        kafka=kafka_bootstrap,
        partitions=PARTITIONS,
        database_url=database_url,
        processing_guarantee=guarantee,
        session_timeout="6",
        saga_step_timeout="300",
    ) as started:
        yield started


async def chaos_monkey(cluster: Cluster, stop: asyncio.Event, kills: list[float]) -> None:
    rng = random.Random(5)
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(*KILL_EVERY))
        if stop.is_set():
            break
        victim = rng.choice(cluster.workers)
        if not alive(victim):
            continue
        victim.kill9()
        kills.append(time.monotonic())
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        victim.start()


async def test_nothing_is_lost_or_done_twice_while_workers_keep_dying(
    cluster: Cluster, kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    guarantee = request.node.callspec.params["cluster"]
    placed: dict[str, Any] = {}
    kills: list[float] = []
    timeout = aiohttp.ClientTimeout(total=45)
    async with aiohttp.ClientSession(headers=auth.admin(), timeout=timeout) as session:
        await stock_up(session, cluster, kafka_bootstrap, SKUS, STOCK, "chaos")

        supervision = asyncio.Event()
        supervisor = asyncio.create_task(supervise(cluster.workers, supervision))
        stop = asyncio.Event()
        load = asyncio.create_task(
            order_load(session, cluster, stop, placed, rate=RATE, skus=SKUS, name="chaos")
        )
        monkey = asyncio.create_task(chaos_monkey(cluster, stop, kills))
        await asyncio.sleep(CHAOS_SECONDS)
        stop.set()
        await asyncio.gather(load, monkey)
        chaos_over = time.monotonic()

        for worker in cluster.workers:
            for _ in range(300):  # the supervisor restarts it if it is down
                if alive(worker):
                    break
                await asyncio.sleep(0.2)
            await asyncio.to_thread(worker.wait_ready, 180, supervised=True)
        await cancel_some(session, cluster, placed)
        final = await await_outcomes(session, cluster, placed)
        recovered = time.monotonic() - chaos_over
        supervision.set()
        watchdog_restarts = await supervisor
        figures = await check_invariants(
            session, cluster, kafka_bootstrap, placed, final, SKUS, STOCK
        )

    rebalances = sum(
        w.log_path.read_text(errors="replace").count("Setting newly assigned partitions")
        for w in cluster.workers
    )
    report = {
        "guarantee": guarantee,
        "seconds_of_chaos": CHAOS_SECONDS,
        "orders": len(placed),
        "confirmed": sum(1 for v in final.values() if v["status"] == "CONFIRMED"),
        "rejected": sum(1 for v in final.values() if v["status"] == "REJECTED"),
        "cancelled": sum(1 for v in final.values() if v["status"] == "CANCELLED"),
        "kills": len(kills),
        "restarts_after_a_stall": watchdog_restarts,
        "rebalances_seen_by_workers": rebalances,
        "seconds_from_last_kill_to_all_outcomes": round(recovered, 1),
        **figures,
    }
    (tmp_path / f"chaos-{guarantee}.json").write_text(json.dumps(report, indent=2))
    print("chaos report:", json.dumps(report))
    assert report["kills"] >= CHAOS_SECONDS / KILL_EVERY[1] - 1

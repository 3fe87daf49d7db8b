"""Scale-out on one machine under continuous load: from one worker to three and back to one.

Orders arrive at a steady rate the whole time while the deployment goes 1 → 2 → 3 workers
(each new worker waited for until it is ready), back 3 → 2 → 1 by graceful stops (SIGTERM),
and then a worker joins once more and is killed with SIGKILL, leaving one. Meanwhile a reader
keeps asking the workers that serve (started and ready, not on their way out) for orders
already accepted.

Afterwards: every accepted order has reached its outcome, stock is conserved, no order was
confirmed or authorized twice, the read models agree (tests/support/load.py), every GET to a
serving worker was answered (200 with the order, or a 503 problem while the group rebalanced,
which a retry turned into a 200), and the graceful stops were clean. The report
(``scale-out.json`` in the test's directory, and printed) says how long each step held the
saga, from the step's start until the next one: ``saga_paused_seconds``, the longest time in
which no order anywhere reached an outcome (the whole group stopped), and
``slowest_order_seconds``, the longest an order accepted in that time waited for its outcome
(orders on the partitions that moved wait for the move and the new owner's table recovery).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import fresh_database
from tests.support import auth
from tests.support.load import (
    Cluster,
    alive,
    await_outcomes,
    cancel_some,
    check_invariants,
    order_load,
    stock_up,
)
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers

PARTITIONS = 6
SKUS = [f"SKU-S{i}" for i in range(6)]
STOCK = 100_000
RATE = 10  # orders per second offered
STEADY = 8.0  # seconds of load before each step, and after the last
# What the deployment goes through, in order: (action, index of the worker).
STEPS = [("join", 1), ("join", 2), ("stop", 2), ("stop", 1), ("join", 1), ("kill", 1)]
GET_TIMEOUT = aiohttp.ClientTimeout(total=10)
# How long a reader retries a GET answered 503 (a rebalance) before it counts as unanswered.
GET_PATIENCE = 60.0


@dataclass
class Step:
    action: str
    worker: str
    started: float  # time.time()
    took: float = 0.0  # seconds until the worker was ready, stopped, or killed
    workers_after: int = 0
    exit_status: int | None = None


@dataclass
class Reads:
    """What the reader saw."""

    gets: int = 0
    answered_ok: int = 0
    answered_rebalancing: int = 0
    longest_until_ok: float = 0.0
    by_worker: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def cluster(kafka_bootstrap: str, postgres: str, run_id: str, tmp_path: Path) -> Iterator[Cluster]:
    name = f"{run_id}-scale"
    # A database of its own: the intake's Idempotency-Keys must not meet another test's.
    with (
        fresh_database(postgres, f"orderflow_{run_id}_scale") as database_url,
        PaymentSimulator(tmp_path / "sim.log") as simulator,
    ):
        # Sagas must outlive the rebalances: this test is about losing nothing.
        workers = platform_workers(
            3,
            tmp_path,
            name=name,
            kafka=kafka_bootstrap,
            partitions=PARTITIONS,
            database_url=database_url,
            gateway=simulator.url,
            session_timeout="6",
            saga_step_timeout="300",
        )
        workers[0].start()
        try:
            workers[0].wait_ready(timeout=180)
            yield Cluster(workers, simulator.url, f"{name}.", PARTITIONS)
        finally:
            for worker in workers:
                worker.stop()


async def read_orders(
    session: aiohttp.ClientSession,
    serving: dict[str, WorkerProcess],
    placed: dict[str, Any],
    stop: asyncio.Event,
    reads: Reads,
) -> None:
    """GET accepted orders from serving workers, ten a second, until ``stop``."""
    rng = random.Random(3)
    while not stop.is_set():
        await asyncio.sleep(0.1)
        if not placed or not serving:
            continue
        order_id = rng.choice(list(placed))
        worker = rng.choice(list(serving.values()))
        started = time.monotonic()
        while worker.name in serving:
            url = f"{worker.url}/api/v1/orders/{order_id}"
            try:
                async with session.get(url, timeout=GET_TIMEOUT) as response:
                    status, body = response.status, await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError) as error:
                if worker.name in serving:  # not one on its way out
                    reads.failures.append(f"{worker.name} did not answer GET {url}: {error!r}")
                break
            reads.gets += 1
            reads.by_worker[worker.name] = reads.by_worker.get(worker.name, 0) + 1
            if status == 200 and body["order_id"] == order_id:
                reads.answered_ok += 1
                waited = time.monotonic() - started
                reads.longest_until_ok = max(reads.longest_until_ok, waited)
                break
            if status != 503 or body.get("status") != 503:
                reads.failures.append(f"{worker.name}: GET {url} answered {status}: {body}")
                break
            reads.answered_rebalancing += 1
            if time.monotonic() - started > GET_PATIENCE:
                reads.failures.append(f"{worker.name}: GET {url} still 503 after {GET_PATIENCE}s")
                break
            await asyncio.sleep(0.2)


async def scale(cluster: Cluster, serving: dict[str, WorkerProcess], steps: list[Step]) -> None:
    """Go through STEPS, STEADY seconds of load before each one and after the last."""
    for action, index in STEPS:
        await asyncio.sleep(STEADY)
        worker = cluster.workers[index]
        step = Step(action, worker.name, time.time())
        if action == "join":
            worker.start()
            await asyncio.to_thread(worker.wait_ready, 180)
            serving[worker.name] = worker
        else:
            serving.pop(worker.name)
            if action == "stop":
                await asyncio.to_thread(worker.stop)
            else:
                worker.kill9()
            assert worker.process is not None
            step.exit_status = worker.process.returncode
        step.took = time.time() - step.started
        step.workers_after = sum(1 for w in cluster.workers if alive(w))
        steps.append(step)
    await asyncio.sleep(STEADY)


def decided_at(view: dict[str, Any]) -> float:
    """When the saga decided the order (its first status after PENDING), as time.time()."""
    first = next(h for h in view["history"] if h["status"] != "PENDING")
    return datetime.fromisoformat(first["at"]).timestamp()


def longest_pause(outcomes: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] in which no order reached an outcome (outcome times
    sorted); a stretch that began before ``start`` counts from its beginning."""
    before = [t for t in outcomes if t < start]
    times = ([before[-1]] if before else [start]) + [t for t in outcomes if start <= t <= end]
    following = [t for t in outcomes if t > end]
    times.append(following[0] if following else end)
    return max(b - a for a, b in itertools.pairwise(times))


def hold_report(
    steps: list[Step], placed: dict[str, Any], final: dict[str, dict[str, Any]], load_from: float
) -> list[dict[str, Any]]:
    """Per step, and for the quiet start as a baseline: the longest pause in outcomes and the
    slowest order accepted from the step's start until the next step (or the end of load)."""
    outcomes = sorted(decided_at(final[o]) for o in placed if final[o]["status"] != "CANCELLED")
    outcomes += sorted(
        decided_at(final[o]) for o in placed if final[o]["status"] == "CANCELLED"
    )  # a cancelled order was confirmed (or rejected) first: that decision counts too
    outcomes.sort()
    bounds = [load_from, *(s.started for s in steps), steps[-1].started + steps[-1].took + STEADY]
    rows = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        step = steps[index - 1] if index else None
        latencies = [
            decided_at(final[o]) - order["accepted_at"]
            for o, order in placed.items()
            if start <= order["accepted_at"] < end
        ]
        rows.append(
            {
                "step": f"{step.action} {step.worker}" if step else "one worker, before any step",
                "at_seconds": round(start - load_from, 1),
                "step_took_seconds": round(step.took, 1) if step else None,
                "workers_after": step.workers_after if step else 1,
                "saga_paused_seconds": round(longest_pause(outcomes, start, end), 2),
                "slowest_order_seconds": round(max(latencies), 2) if latencies else None,
                "orders_accepted": len(latencies),
            }
        )
    return rows


async def test_scaling_from_one_to_three_workers_and_back_loses_nothing(
    cluster: Cluster, kafka_bootstrap: str, tmp_path: Path
) -> None:
    placed: dict[str, Any] = {}
    steps: list[Step] = []
    reads = Reads()
    serving = {cluster.workers[0].name: cluster.workers[0]}
    timeout = aiohttp.ClientTimeout(total=45)
    async with aiohttp.ClientSession(headers=auth.admin(), timeout=timeout) as session:
        await stock_up(session, cluster, kafka_bootstrap, SKUS, STOCK, "scale-out")
        stop = asyncio.Event()
        load_from = time.time()
        load = asyncio.create_task(
            order_load(session, cluster, stop, placed, rate=RATE, skus=SKUS, name="scale")
        )
        reader = asyncio.create_task(read_orders(session, serving, placed, stop, reads))
        try:
            await scale(cluster, serving, steps)
        finally:
            stop.set()
            await asyncio.gather(load, reader)
        load_over = time.monotonic()

        # One worker is left; it owns every partition once the group has noticed the kill.
        survivor = cluster.workers[0]
        await asyncio.to_thread(survivor.wait_ready, 120)
        await cancel_some(session, cluster, placed)
        final = await await_outcomes(session, cluster, placed)
        settled = time.monotonic() - load_over
        figures = await check_invariants(
            session, cluster, kafka_bootstrap, placed, final, SKUS, STOCK
        )

    holds = hold_report(steps, placed, final, load_from)
    rebalances = sum(
        w.log_path.read_text(errors="replace").count("Setting newly assigned partitions")
        for w in cluster.workers
        if w.log_path.exists()
    )
    report = {
        "orders": len(placed),
        "orders_per_second_offered": RATE,
        "confirmed": sum(1 for v in final.values() if v["status"] == "CONFIRMED"),
        "rejected": sum(1 for v in final.values() if v["status"] == "REJECTED"),
        "cancelled": sum(1 for v in final.values() if v["status"] == "CANCELLED"),
        "rebalances_seen_by_workers": rebalances,
        "gets": reads.gets,
        "gets_answered_200": reads.answered_ok,
        "gets_answered_503_rebalancing": reads.answered_rebalancing,
        "longest_seconds_until_a_get_was_200": round(reads.longest_until_ok, 2),
        "gets_by_worker": reads.by_worker,
        "seconds_from_end_of_load_to_all_outcomes": round(settled, 1),
        **figures,
        "steps": holds,
    }
    (tmp_path / "scale-out.json").write_text(json.dumps(report, indent=2))
    print("scale-out report:", json.dumps(report, indent=2))

    assert reads.failures == []
    assert [(s.action, s.worker) for s in steps] == [
        (action, cluster.workers[index].name) for action, index in STEPS
    ]
    assert [s.workers_after for s in steps] == [2, 3, 2, 1, 2, 1]
    # Every worker that served was asked, and answered.
    assert set(reads.by_worker) == {w.name for w in cluster.workers}
    # The graceful stops were graceful: exit status 0 and the clean-stop mark left behind
    # (the kill -9 leaves none).
    assert [s.exit_status for s in steps if s.action == "stop"] == [0, 0]
    assert (tmp_path / "worker-2" / "clean-stop").exists()
    assert not (tmp_path / "worker-1" / "clean-stop").exists()
    # The saga went on after every step: orders accepted after each one reached outcomes
    # (await_outcomes) and outcomes kept coming in each step's window.
    assert all(row["orders_accepted"] > 0 for row in holds), holds
    assert all(row["saga_paused_seconds"] < STEADY + 60 for row in holds), holds

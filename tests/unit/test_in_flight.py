"""What a rebalance waits for: the events in progress, and nothing else."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from orderflow import app as app_module
from orderflow.app import create_app
from orderflow.resilience.in_flight import InFlight
from orderflow.settings import Settings

pytestmark = pytest.mark.unit


async def test_idle_once_every_held_event_is_done() -> None:
    in_flight = InFlight()
    await asyncio.wait_for(in_flight.wait_idle(), 1)  # nothing held: idle at once
    with in_flight.hold(3):
        with in_flight.hold():
            assert len(in_flight) == 4
        waiter = asyncio.create_task(in_flight.wait_idle())
        await asyncio.sleep(0.01)
        assert not waiter.done()
    await asyncio.wait_for(waiter, 1)
    assert len(in_flight) == 0


async def test_begin_and_end_count_like_hold() -> None:
    in_flight = InFlight()
    in_flight.begin(2)
    waiter = asyncio.create_task(in_flight.wait_idle())
    in_flight.end()
    await asyncio.sleep(0.01)
    assert not waiter.done()
    in_flight.end()
    await asyncio.wait_for(waiter, 1)


async def test_a_failing_event_is_released_too() -> None:
    in_flight = InFlight()
    with pytest.raises(RuntimeError), in_flight.hold():
        raise RuntimeError("handler failed")
    await asyncio.wait_for(in_flight.wait_idle(), 1)


class RecordingConsumer:
    def __init__(self, in_flight: InFlight) -> None:
        self.in_flight = in_flight
        self.commits: list[tuple[bool, int]] = []

    async def commit(self, start_new_transaction: bool = True) -> bool:
        self.commits.append((start_new_transaction, len(self.in_flight)))
        return True


class Log:
    def info(self, *args: Any) -> None:
        pass


async def test_a_rebalance_commits_after_the_events_in_progress_end() -> None:
    app = create_app(Settings(), platform=False)
    consumer = RecordingConsumer(app.in_flight)
    release = asyncio.Event()

    async def handler() -> None:
        with app.in_flight.hold():
            await release.wait()

    working = asyncio.create_task(handler())
    await asyncio.sleep(0)
    revoking = asyncio.create_task(app._consumer_wait_empty(consumer, Log()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert consumer.commits == []  # still waiting for the handler
    release.set()
    await asyncio.wait_for(revoking, 1)
    await working
    assert consumer.commits == [(False, 0)]


async def test_a_stuck_event_does_not_hold_a_rebalance_or_a_stop_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = create_app(Settings(), platform=False)
    monkeypatch.setattr(app_module, "IN_FLIGHT_WAIT", 0.2)
    committed: list[bool] = []

    class Consumer:
        async def commit(self, start_new_transaction: bool = True) -> None:
            committed.append(start_new_transaction)

    made.in_flight.begin()  # an event whose handler never ends
    try:
        await asyncio.wait_for(made._consumer_wait_empty(Consumer(), logging.getLogger()), 2)
    finally:
        made.in_flight.end()
        made.consumer._thread.thread_loop.close()
    assert committed == [False]  # what was acknowledged is committed, the stuck one is not

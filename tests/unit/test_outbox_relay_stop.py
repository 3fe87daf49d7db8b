"""A stopping worker's cancellation reaches the outbox relay, however busy its wake-ups."""

from __future__ import annotations

import asyncio
import contextlib

from orderflow.db import Database
from orderflow.settings import Settings
from orderflow.sinks.outbox_relay import OutboxRelay


async def test_the_relay_waiting_for_work_can_be_cancelled_while_notifications_pour_in() -> None:
    settings = Settings()
    relay = OutboxRelay(settings, Database(settings))

    async def waiting() -> None:
        while True:  # what run() does between batches
            await relay._sleep()

    async def notifying() -> None:
        while True:  # a NOTIFY per accepted order, as under load
            relay.wake.set()
            await asyncio.sleep(0)

    swallowed = 0
    for _ in range(20):
        notifier = asyncio.create_task(notifying())
        sleeper = asyncio.create_task(waiting())
        await asyncio.sleep(0.01)
        sleeper.cancel()
        done, _ = await asyncio.wait({sleeper}, timeout=1.0)
        if not done:
            swallowed += 1
        for task in (sleeper, notifier):
            task.cancel()
        notifier_done = await asyncio.wait({notifier}, timeout=1.0)
        assert notifier_done[0]
        with contextlib.suppress(asyncio.CancelledError):
            await notifier
        if done:
            assert sleeper.cancelled()
        else:  # free it for the next round: stop the notifications, then it sees a cancel
            sleeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(sleeper, timeout=2.0)
    assert swallowed == 0, f"{swallowed} of 20 cancellations were swallowed"

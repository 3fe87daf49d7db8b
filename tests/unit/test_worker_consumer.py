"""The worker's consumer hands a message to the streams in its own read loop when nothing can
block the hand-over, and through Faust's interruptible ``wait_first`` otherwise.

The consumer is real and unstarted; its fetch is replaced by the batches given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from faust.types import TP, Message
from mode import Service

from orderflow.app import OrderflowApp, create_app
from orderflow.consumer import WorkerConsumer
from orderflow.settings import Settings

TOPIC = "worker-consumer-test"
PARTITION = TP(TOPIC, 0)


@pytest.fixture
def app() -> Iterator[OrderflowApp]:
    made = create_app(Settings(), platform=False)
    made.flow_control.resume()  # as after a rebalance: flow control starts suspended
    yield made
    made.consumer._thread.thread_loop.close()  # made for the Kafka client, never started


def message(offset: int) -> Message:
    return Message(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=PARTITION)


def full_queue(app: OrderflowApp) -> None:
    """A stream of PARTITION whose queue has no room left."""
    topic: Any = app.topic(TOPIC)
    for _ in range(topic.queue.maxsize):
        topic.queue.put_nowait(None)
    app.topics._tp_index[PARTITION].add(topic)  # type: ignore[attr-defined]


def test_the_app_reads_with_the_worker_consumer(app: OrderflowApp) -> None:
    assert isinstance(app.consumer, WorkerConsumer)


def test_a_hand_over_that_cannot_block_is_direct(app: OrderflowApp) -> None:
    assert app.consumer._hands_over_at_once(PARTITION)  # type: ignore[attr-defined]


def test_a_hand_over_that_may_block_is_not_direct(
    app: OrderflowApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer: Any = app.consumer

    consumer.suspend_flow.set()  # a rebalance began
    assert not consumer._hands_over_at_once(PARTITION)
    consumer.suspend_flow.clear()

    app.flow_control.suspend()  # the streams take nothing until the rebalance is over
    assert not consumer._hands_over_at_once(PARTITION)
    app.flow_control.resume()

    monkeypatch.setattr(app.producer.buffer, "max_messages", -1)  # the buffer must ebb first
    assert not consumer._hands_over_at_once(PARTITION)
    monkeypatch.undo()

    full_queue(app)
    assert not consumer._hands_over_at_once(PARTITION)
    assert consumer._hands_over_at_once(TP(TOPIC, 1))  # another partition's queues have room


class Reading:
    """The consumer's read loop over the batches given, recording where each hand-over ran."""

    def __init__(self, app: OrderflowApp, batches: list[list[int]]) -> None:
        loop = asyncio.get_running_loop()
        self.handed: list[tuple[int, bool]] = []  # offset, and whether in the read loop's task
        self.batches = batches
        self.fetcher = Service(loop=loop)
        self.loop_task: asyncio.Task[Any] | None = None
        self.consumer: Any = WorkerConsumer(
            app.settings,
            app.transport,
            callback=self._streams,
            on_partitions_revoked=lambda revoked: None,
            on_partitions_assigned=lambda assigned: None,
            loop=loop,
        )
        self.consumer.getmany = self._getmany

    async def _streams(self, message: Message) -> None:
        self.handed.append((message.offset, asyncio.current_task() is self.loop_task))

    async def _getmany(
        self,
        timeout: float,  # noqa: ASYNC109 (Faust's signature)
    ) -> AsyncIterator[tuple[TP, Message]]:
        if not self.batches:
            self.fetcher._stopped.set()
            return
        for offset in self.batches.pop(0):
            yield PARTITION, message(offset)

    async def run(self) -> list[tuple[int, bool]]:
        self.loop_task = asyncio.ensure_future(self.consumer._drain_messages(self.fetcher))
        try:
            await asyncio.wait_for(self.loop_task, timeout=5)
        finally:
            self.consumer._thread.thread_loop.close()
        return self.handed


async def test_messages_are_handed_over_in_order_without_a_task_each(app: OrderflowApp) -> None:
    handed = await Reading(app, [[0, 1, 2], [3, 4]]).run()
    assert handed == [(offset, True) for offset in range(5)]


async def test_a_message_whose_queue_is_full_goes_through_an_interruptible_task(
    app: OrderflowApp,
) -> None:
    reading = Reading(app, [[0, 1]])
    full_queue(app)
    handed = await reading.run()
    assert handed == [(0, False), (1, False)]  # Faust's wait_first: a rebalance can abandon it


async def test_messages_read_before_are_not_handed_over_again(app: OrderflowApp) -> None:
    reading = Reading(app, [[0, 1, 2], [0, 1, 3]])
    handed = await reading.run()
    assert [offset for offset, _ in handed] == [0, 1, 2, 3]
    assert reading.consumer._read_offset[PARTITION] == 3

"""Faust's read loop over a batch that the seek after a rebalance interrupts.

The consumer is Faust's own (unstarted); only its calls into the Kafka client are replaced: the
fetch returns the batches below, the committed offset is 10, and the log end is 100. The streams
record what they are handed; acknowledging is what Faust does when a stream finishes a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message
from mode import Service

from orderflow.app import app
from orderflow.resilience import seeks

TOPIC = "seeks-test"
PARTITION = TP(TOPIC, 0)
COMMITTED = 10


class Partition:
    """One partition read by a real Faust consumer, with the Kafka client calls replaced."""

    def __init__(self, *, fixed: bool) -> None:
        loop = asyncio.get_running_loop()
        self.handed: list[Message] = []
        self.fetches: list[tuple[list[int], bool]] = []
        self.fetcher = Service(loop=loop)
        consumer: Any = app.transport.Consumer(
            app.transport,
            callback=self._streams,
            on_partitions_revoked=lambda revoked: None,
            on_partitions_assigned=lambda assigned: None,
            loop=loop,
        )
        consumer._wait_next_records = self._fetch
        consumer.seek_to_committed = self._seek_to_committed
        consumer.highwater = lambda tp: 100
        consumer._committed_offset[PARTITION] = COMMITTED
        if fixed:
            seeks.install(consumer)
        self.consumer = consumer
        self.seeked = False

    async def _streams(self, message: Message) -> None:
        self.handed.append(message)

    async def _seek_to_committed(self) -> dict[TP, int]:
        return {PARTITION: COMMITTED}

    async def _fetch(self, _: float) -> tuple[dict[TP, list[ConsumerRecord]], set[TP]]:
        if self.seeked:
            # Recovery resumes the flow after the seek, which empties the streams' queues.
            self.seeked = False
            self.consumer.resume_flow()
            self.handed = [m for m in self.handed if m.acked]
        if not self.fetches:
            self.fetcher._stopped.set()
            return {}, set()
        offsets, seek_meanwhile = self.fetches.pop(0)
        if seek_meanwhile:
            # Recovery seeks to the committed offsets while this fetch, from the position
            # before the seek, is on its way.
            await self.consumer.perform_seek()
            self.seeked = True
        return {PARTITION: [record(offset) for offset in offsets]}, {PARTITION}

    async def read(self, *fetches: tuple[list[int], bool]) -> None:
        """Run the read loop over ``fetches``: each the offsets fetched, and whether the seek
        happens while that fetch is on its way."""
        self.fetches = list(fetches)
        await asyncio.wait_for(self.consumer._drain_messages(self.fetcher), timeout=5)

    def process(self, *offsets: int) -> None:
        for message in self.handed:
            if message.offset in offsets and not message.acked:
                self.consumer.ack(message)

    def processed(self) -> list[int]:
        return sorted({m.offset for m in self.handed if m.acked})

    def commit(self) -> int | None:
        """What the periodic commits reach: the offset committed last."""
        consumer = self.consumer
        offset = consumer._new_offset(PARTITION)
        while offset is not None:
            if consumer._should_commit(PARTITION, offset):
                consumer._committed_offset[PARTITION] = offset
            offset = consumer._new_offset(PARTITION)
        return consumer._committed_offset[PARTITION]  # type: ignore[no-any-return]

    def close(self) -> None:
        # The consumer made an event loop for its Kafka client thread, which never started.
        self.consumer._thread.thread_loop.close()


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", b"v", None, 1, 1, ())


@pytest.fixture(autouse=True)
def acks_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.topics, "_acking_topics", {TOPIC})


@pytest.fixture
def partitions() -> Iterator[list[Partition]]:
    made: list[Partition] = []
    yield made
    for partition in made:
        partition.close()


# The partitions are resumed and 10 to 13 are handed over; the next fetch is on its way when
# the seek resets the last offset read to 10; then the flow resumes and the queues are emptied.
FETCHES = [(list(range(10, 14)), False), ([14, 15], True), (list(range(10, 18)), False)]


async def test_faust_alone_commits_past_messages_no_stream_processed(
    partitions: list[Partition],
) -> None:
    """The defect: the fetch from before the seek is handed over after it, its first message
    opens a gap over 11 to 14, and the read from 10 again skips up to 15 as read."""
    partition = Partition(fixed=False)
    partitions.append(partition)
    await partition.read(*FETCHES)

    partition.process(*range(10, 18))
    assert partition.processed() == [15, 16, 17]
    assert partition.commit() == 18  # past 10 to 14, which no stream processed


async def test_the_seek_abandons_the_fetch_and_everything_is_read_again(
    partitions: list[Partition],
) -> None:
    partition = Partition(fixed=True)
    partitions.append(partition)
    await partition.read(*FETCHES)

    assert [m.offset for m in partition.handed] == list(range(10, 18))  # read again from 10
    partition.process(10, 11, 12)
    assert partition.commit() == 13
    partition.process(*range(13, 18))
    assert partition.processed() == list(range(10, 18))
    assert partition.commit() == 18


async def test_the_app_installs_it_on_its_consumer() -> None:
    consumer: Any = app._new_consumer()
    consumer._thread.thread_loop.close()
    assert consumer.perform_seek.__qualname__ == "install.<locals>.seek_with_the_flow_stopped"

"""Faust's read loop over batches that the seek after a rebalance interrupts.

The consumers are real and unstarted, Faust's own and orderflow's; only their calls into the
Kafka client are replaced: the fetch returns the batches given, the committed offset is 10 and
the log end 100. The streams record what they are handed; acknowledging is what Faust does when
a stream finishes a message, and the commits are what its periodic commit would reach.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.tables.recovery import Recovery
from faust.types import TP, Message
from mode import Service

from orderflow.app import create_app
from orderflow.resilience.seeks import SeekSafeConsumer
from orderflow.settings import Settings

app = create_app(Settings(), platform=False)
TOPIC = "seeks-test"
PARTITION = TP(TOPIC, 0)
COMMITTED = 10
CHANGELOG = TP("seeks-test-changelog", 0)

Fetch = tuple[list[int], bool]  # the offsets fetched, and whether the seek happens meanwhile


class KafkaClient:
    """aiokafka's consumer as the seek uses it: assignment, committed offsets, seeks."""

    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self.committed_offsets = committed
        self.sought: dict[TopicPartition, int | str] = {}
        self.failing_seeks = 0  # how many seeks fail next, as with a broker gone meanwhile

    def assignment(self) -> set[TopicPartition]:
        return set(self.committed_offsets)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:  # as aiokafka checks it
            raise ValueError("Offset must be a positive integer")
        if self.failing_seeks:
            self.failing_seeks -= 1
            raise ConnectionError("the broker went away")
        self.sought[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return int(self.sought[tp])

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.sought.update(dict.fromkeys(tps, "beginning"))


class Partition:
    """One partition read by a real consumer, with the Kafka client calls replaced."""

    def __init__(self, consumer_class: Callable[..., Any]) -> None:
        loop = asyncio.get_running_loop()
        self.handed: list[Message] = []
        self.fetches: list[Fetch] = []
        self.fetcher = Service(loop=loop)
        self.deliveries = asyncio.Queue[Message]()
        self.blocked_at: int | None = None
        self.blocked = asyncio.Event()
        self.unblock = asyncio.Event()
        consumer: Any = consumer_class(
            app.transport,
            callback=self._streams,
            on_partitions_revoked=lambda revoked: None,
            on_partitions_assigned=lambda assigned: None,
            loop=loop,
        )
        consumer._wait_next_records = self._fetch
        consumer.seek_to_committed = self._committed
        consumer._seek_stream_partitions = self._committed
        consumer._thread.call_thread = self._on_the_consumer_thread
        self.client = KafkaClient({TopicPartition(TOPIC, 0): COMMITTED})
        consumer._thread._ensure_consumer = lambda: self.client
        consumer.highwater = lambda tp: 100
        consumer._committed_offset[PARTITION] = COMMITTED
        self.consumer = consumer
        self.seeked = False
        self.changelog_records: list[int] = []  # in the fetch the seek happens during

    async def _streams(self, message: Message) -> None:
        if message.offset == self.blocked_at:
            self.blocked_at = None
            self.blocked.set()
            await self.unblock.wait()  # a stream's queue is full
        self.handed.append(message)

    async def _committed(self) -> dict[TP, int]:
        return {PARTITION: COMMITTED}

    @staticmethod
    async def _on_the_consumer_thread(fun: Callable[..., Any], *args: Any) -> Any:
        return await fun(*args)

    async def seek(self) -> None:
        """The seek, then what recovery does after it: resume the flow, which empties the
        streams' queues (of what no stream has finished)."""
        await self.consumer.perform_seek()
        self.consumer.resume_flow()
        self.handed = [m for m in self.handed if m.acked or m.tp == CHANGELOG]

    async def _fetch(self, _: float) -> tuple[dict[TP, list[ConsumerRecord]], set[TP]]:
        if self.seeked:
            self.seeked = False
            self.consumer.resume_flow()
            self.handed = [m for m in self.handed if m.acked or m.tp == CHANGELOG]
        if not self.fetches:
            self.fetcher._stopped.set()
            return {}, set()
        offsets, seek_meanwhile = self.fetches.pop(0)
        if seek_meanwhile:
            # The seek runs while this fetch, from the position before it, is on its way.
            await self.consumer.perform_seek()
            self.seeked = True
        records = {PARTITION: [record(offset) for offset in offsets]}
        if seek_meanwhile and self.changelog_records:
            records[CHANGELOG] = [record(o, CHANGELOG) for o in self.changelog_records]
        return records, set(records)

    async def read(self, *fetches: Fetch) -> None:
        self.fetches = list(fetches)
        await asyncio.wait_for(self.consumer._drain_messages(self.fetcher), timeout=5)

    def process(self, *offsets: int) -> None:
        for message in self.handed:
            if message.offset in offsets and not message.acked:
                self.consumer.ack(message)

    def processed(self) -> list[int]:
        return sorted({m.offset for m in self.handed if m.acked})

    def commit(self) -> int | None:
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


def record(offset: int, tp: TP = PARTITION) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


@pytest.fixture(autouse=True)
def acks_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.topics, "_acking_topics", {TOPIC})


@pytest.fixture(autouse=True)
def a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    tables: Any = app.tables
    monkeypatch.setitem(tables._changelogs, CHANGELOG.topic, object())


@pytest.fixture
def partition() -> Iterator[Callable[[Callable[..., Any]], Partition]]:
    made: list[Partition] = []

    def make(consumer_class: Callable[..., Any]) -> Partition:
        made.append(Partition(consumer_class))
        return made[-1]

    yield make
    for each in made:
        each.close()


# 10 to 13 are handed over; the next fetch, 14 and 15, is on its way when the seek resets the
# last offset read to 10; then the flow resumes, the queues are emptied and 10 on is fetched.
FETCHES = [(list(range(10, 14)), False), ([14, 15], True), (list(range(10, 18)), False)]


async def test_faust_alone_commits_past_messages_no_stream_processed(
    partition: Callable[..., Partition],
) -> None:
    """The defect: the fetch from before the seek is handed over after it, its first message
    opens a gap over 11 to 14, and the read from 10 again skips up to 15 as read."""
    faust_alone = partition(app.transport.Consumer)
    await faust_alone.read(*FETCHES)

    faust_alone.process(*range(10, 18))
    assert faust_alone.processed() == [15, 16, 17]
    assert faust_alone.commit() == 18  # past 10 to 14, which no stream processed


async def test_the_batch_from_before_the_seek_is_dropped_and_everything_read_again(
    partition: Callable[..., Partition],
) -> None:
    safe = partition(SeekSafeConsumer)
    safe.changelog_records = [5, 6]
    await safe.read(*FETCHES)

    # Recovery still gets the changelog's records, which the seek does not move.
    assert [m.offset for m in safe.handed if m.tp == CHANGELOG] == [5, 6]
    safe.handed = [m for m in safe.handed if m.tp == PARTITION]
    assert [m.offset for m in safe.handed] == list(range(10, 18))  # read again from 10
    safe.process(10, 11, 12)
    assert safe.commit() == 13
    safe.process(*range(13, 18))
    assert safe.processed() == list(range(10, 18))
    assert safe.commit() == 18


async def test_a_delivery_in_progress_finishes_and_nothing_after_it_is_delivered(
    partition: Callable[..., Partition],
) -> None:
    safe = partition(SeekSafeConsumer)
    safe.blocked_at = 12
    batch = list(range(10, 16))
    reading = asyncio.ensure_future(safe.read((batch, False), (batch, False)))
    await safe.blocked.wait()
    assert [m.offset for m in safe.handed] == [10, 11]
    safe.process(10)  # a stream finished 10 before the seek
    await safe.seek()
    assert safe.commit() == COMMITTED  # what was acknowledged before the seek is forgotten
    safe.unblock.set()
    await reading

    # 12 was not cut off, 13 on never came from the batch before the seek, then 10 on again.
    assert [m.offset for m in safe.handed] == [10, 12, *batch]
    safe.process(*batch)
    assert safe.commit() == 16


async def test_acknowledging_a_message_from_an_earlier_generation_commits_nothing(
    partition: Callable[..., Partition], monkeypatch: pytest.MonkeyPatch
) -> None:
    safe = partition(SeekSafeConsumer)
    await safe.read((list(range(10, 13)), False))
    monkeypatch.setattr(app, "consumer_generation_id", app.consumer_generation_id + 1)

    safe.process(10, 11, 12)
    assert safe.commit() == COMMITTED
    assert not safe.consumer._unacked_messages  # and a rebalance does not wait for them


async def test_every_stream_partition_is_sought_even_with_nothing_committed(
    partition: Callable[..., Partition], monkeypatch: pytest.MonkeyPatch
) -> None:
    safe = partition(SeekSafeConsumer)
    del safe.consumer._seek_stream_partitions  # the real one, on the replaced Kafka client
    changelog = CHANGELOG.topic
    client = KafkaClient(
        {
            TopicPartition(TOPIC, 0): 10,
            TopicPartition(TOPIC, 1): None,
            TopicPartition(TOPIC, 2): 0,
            TopicPartition(changelog, 0): None,
        }
    )
    monkeypatch.setattr(safe.consumer._thread, "_ensure_consumer", lambda: client)

    await safe.consumer.perform_seek()
    assert client.sought == {
        TopicPartition(TOPIC, 0): 10,
        TopicPartition(TOPIC, 1): "beginning",
        TopicPartition(TOPIC, 2): "beginning",
    }  # aiokafka alone seeks only the first; the changelog is recovery's to position
    assert safe.consumer._read_offset[TP(TOPIC, 0)] == 10
    assert safe.consumer._read_offset[TP(TOPIC, 1)] is None


async def test_records_fetched_during_the_seek_are_fetched_again(
    partition: Callable[..., Partition], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetch made while the seek runs may already come from the new position; the client
    moves past what it hands over, so dropping those records means seeking back to them."""
    safe = partition(SeekSafeConsumer)
    client = safe.client
    position, log_end = COMMITTED, 14
    seek_may_end = asyncio.Event()

    async def seek_stream_partitions() -> dict[TP, int]:
        await seek_may_end.wait()
        return {PARTITION: COMMITTED}

    async def fetch(_: float) -> tuple[dict[TP, list[ConsumerRecord]], set[TP]]:
        nonlocal position
        position = client.sought.pop(TopicPartition(TOPIC, 0), position)  # type: ignore[assignment]
        if position == log_end:
            safe.fetcher._stopped.set()
            return {}, set()
        records = [record(offset) for offset in range(position, min(position + 2, log_end))]
        position += len(records)
        seek_may_end.set()  # the seek ends once this fetch is made
        return {PARTITION: records}, {PARTITION}

    safe.consumer._seek_stream_partitions = seek_stream_partitions
    safe.consumer._wait_next_records = fetch
    seeking = asyncio.ensure_future(safe.consumer.perform_seek())
    await asyncio.sleep(0)
    await asyncio.wait_for(safe.consumer._drain_messages(safe.fetcher), timeout=5)
    await seeking

    assert [m.offset for m in safe.handed] == [10, 11, 12, 13]
    safe.process(10, 11, 12, 13)
    assert safe.commit() == 14


async def test_a_failed_seek_back_holds_the_fetch_until_it_succeeds(
    partition: Callable[..., Partition],
) -> None:
    """A record dropped as stale is fetched again only once the partition is sought back: a
    fetch before that would come from past it."""
    safe = partition(SeekSafeConsumer)
    safe.client.failing_seeks = 1
    safe.changelog_records = []
    await safe.read(*FETCHES)

    assert safe.client.failing_seeks == 0  # the seek back failed once, and was made again
    assert safe.client.sought == {TopicPartition(TOPIC, 0): COMMITTED}
    assert [m.offset for m in safe.handed] == list(range(10, 18))
    safe.process(*range(10, 18))
    assert safe.commit() == 18


def recovery_offsets() -> tuple[set[TP], Counter[TP]]:
    """What Faust's recovery seeks after a rebalance during its build of the changelog offsets:
    partition 0 built (12), 1 empty (-1), and 2 assigned meanwhile, with no offset yet."""
    offsets: Counter[TP] = Counter()
    offsets[TP(CHANGELOG.topic, 0)] = 12
    offsets[TP(CHANGELOG.topic, 1)] = -1
    offsets[TP(CHANGELOG.topic, 2)] = None  # type: ignore[assignment]
    return set(offsets), offsets


async def test_faust_alone_crashes_recovery_on_a_partition_assigned_during_it(
    partition: Callable[..., Partition],
) -> None:
    faust_alone = partition(app.transport.Consumer)
    faust_alone.client.committed_offsets = {}
    with pytest.raises(ValueError, match="Offset must be a positive integer"):
        await Recovery._seek_offsets(None, faust_alone.consumer, *recovery_offsets(), "active")  # type: ignore[arg-type]


async def test_a_changelog_partition_without_an_offset_is_read_from_its_start(
    partition: Callable[..., Partition],
) -> None:
    safe = partition(SeekSafeConsumer)
    safe.client.committed_offsets = {}
    await Recovery._seek_offsets(None, safe.consumer, *recovery_offsets(), "active")  # type: ignore[arg-type]

    changelog = CHANGELOG.topic
    assert safe.client.sought == {
        TopicPartition(changelog, 0): 12,
        TopicPartition(changelog, 1): 0,
        TopicPartition(changelog, 2): 0,
    }
    assert safe.consumer._read_offset[TP(changelog, 0)] == 12
    assert TP(changelog, 2) not in safe.consumer._read_offset


def test_the_app_reads_with_it() -> None:
    consumer: Any = app._new_consumer()
    consumer._thread.thread_loop.close()
    assert isinstance(consumer, SeekSafeConsumer)


def client_awaiting_a_seek(tp: TP) -> Any:
    """aiokafka's consumer with ``tp`` assigned, fetched from, its highwater known and its
    position not: a seek to the beginning is still to be carried out."""
    subscriptions = SubscriptionState()
    subscriptions.assign_from_user({TopicPartition(tp.topic, tp.partition)})
    state = subscriptions.subscription.assignment.state_value(  # type: ignore[union-attr]
        TopicPartition(tp.topic, tp.partition)
    )
    state.await_reset(OffsetResetStrategy.EARLIEST)
    state.timestamp = time.time() * 1000  # a fetch request was just sent
    state.highwater = 100
    return SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=subscriptions))


async def test_faust_alone_crashes_checking_a_partition_whose_seek_is_pending(
    partition: Callable[..., Partition],
) -> None:
    faust_alone = partition(app.transport.Consumer)
    faust_alone.consumer._thread._ensure_consumer = lambda: client_awaiting_a_seek(PARTITION)
    faust_alone.consumer._thread.time_started = time.monotonic()
    with pytest.raises(AssertionError):
        faust_alone.consumer.verify_event_path(time.monotonic(), PARTITION)


async def test_a_partition_whose_seek_is_pending_is_checked_next_round(
    partition: Callable[..., Partition],
) -> None:
    safe = partition(SeekSafeConsumer)
    safe.consumer._thread._ensure_consumer = lambda: client_awaiting_a_seek(PARTITION)
    safe.consumer._thread.time_started = time.monotonic()
    safe.consumer.verify_event_path(time.monotonic(), PARTITION)  # no AssertionError

"""The consumer: Faust's, with a seek after a rebalance that cannot commit past a message.

After a rebalance's table recovery, Faust resumes the stream partitions, seeks them to their
committed offsets (``Consumer.perform_seek``, which also resets the last offset read), then
resumes the flow, which empties the streams' queues. What Faust's consumer does around that
seek can let a commit pass messages that no stream processed:

1. **The batch in hand outlives the seek.** A fetch made before the seek, from past the
   committed offset, is handed over after it. Its first message lands more than one offset past
   the reset "last read", so the read loop records the offsets in between as a *gap* (offsets
   never read, as compaction leaves them), which commits count as processed; the read from the
   committed offset then skips everything up to that message as already read.
2. **Partitions with nothing committed are not sought at all** (aiokafka seeks only to an
   offset above 0), so the messages handed over before the seek and emptied from the queues are
   not read again.
3. **Acknowledgements from before the seek count after it.** A message that was handed over
   before a rebalance and acknowledged after it (or skipped by a stream because the flow was
   suspended, which Faust also acknowledges) adds its offset to what is committed next; with
   Faust's tolerance of one missing offset at the head of what was acknowledged, that can pass
   the committed offset itself.

:class:`SeekSafeConsumer` closes each. A seek starts a new *read epoch*: a batch fetched
before or during it delivers nothing more from the partitions sought (the delivery in progress
finishes, nothing is cancelled midway) and opens no gap there; a partition whose records were
dropped so is sought back before the next fetch, since a fetch made during the seek may already
come from the new position. Every stream partition is sought, to the beginning when nothing is
committed. What was acknowledged before the seek is forgotten, and acknowledgements of messages
from an earlier consumer generation are ignored. Everything from the committed offsets is read
again; handlers are idempotent, so reading again is harmless, and skipping is what this
prevents.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message
from faust.types.tuples import ack_lock

log = logging.getLogger(__name__)


class SeekSafeConsumer(Consumer):
    """Faust's aiokafka consumer whose seek to the committed offsets starts a new read epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Even between seeks, odd while one runs.
        self._read_epoch = 0
        #: The epoch the batch being handed over was fetched in.
        self._batch_epoch = 0
        #: The topics the seek leaves alone: table recovery positions the changelogs itself.
        self._changelogs: frozenset[str] = frozenset()
        #: The committed offsets the last seek moved each partition to.
        self._sought_to: dict[TP, int | None] = {}
        #: Partitions whose last offset read is set again, from ``_sought_to``, before the next
        #: fetch: the read loop may still record a message of the old batch as read after the
        #: seek set it.
        self._read_again: set[TP] = set()
        #: Partitions whose records were dropped as stale, to seek again before the next fetch:
        #: a fetch made during the seek may already come from the new position, and the client
        #: does not hand those records over twice.
        self._seek_again: set[TP] = set()
        deliver = self.callback

        async def deliver_unless_stale(message: Message) -> None:
            if self._stale(message.tp):
                self._seek_again.add(message.tp)
            else:
                await deliver(message)

        self.callback = deliver_unless_stale

    def _stale(self, tp: TP) -> bool:
        """Whether ``tp``'s records in the batch being handed over were fetched before a seek
        that moved ``tp`` (every partition but the changelogs')."""
        if self._batch_epoch == self._read_epoch and not self._read_epoch % 2:
            return False
        return tp.topic not in self._changelogs

    async def perform_seek(self) -> None:
        """Seek every stream partition to its committed offset and read from there again."""
        self._changelogs = frozenset(self.app.tables.changelog_topics)
        self._read_epoch += 1
        try:
            committed = await self._thread.call_thread(self._seek_stream_partitions)
        finally:
            self._read_epoch += 1
        self._sought_to = dict(committed)
        read_from = {tp: _last_read(offset) for tp, offset in committed.items()}
        with ack_lock:
            for tp in committed:
                self._acked.pop(tp, None)
                self._acked_index.pop(tp, None)
                self._gap.pop(tp, None)
            self._committed_offset.update(read_from)
        self._read_offset.update(read_from)
        self._read_again = set(committed)

    async def seek_wait(self, partitions: Mapping[TP, int | None]) -> None:
        """Table recovery's seek of the changelog partitions to where their reading starts.

        Faust's recovery builds those offsets over its *live* set of assigned changelog
        partitions, so a rebalance while it builds them (workers starting together) adds a
        partition with no offset yet (``None``), and Faust then hands that to the client, which
        refuses it (``ValueError: Offset must be a positive integer``) and the worker crashes.
        Such a partition, like one with an offset below 0, is read from its start, as Faust reads
        a changelog that has nothing persisted; the new assignment restarts recovery anyway.
        """
        await super().seek_wait({tp: _reading_start(offset) for tp, offset in partitions.items()})

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's periodic check that a partition's events flow, except for a partition whose
        position the client does not know yet.

        Faust reads the client's position of every assigned partition; while a seek is still
        to be carried out (a seek to the beginning, which this consumer makes for every stream
        partition of a new deployment) the client asserts on that read, and the worker crashed
        (``AssertionError`` in ``_commit_livelock_detector``). Such a partition has nothing to
        check yet: it is checked again in the next round.
        """
        client: AIOKafkaConsumer = self._thread._ensure_consumer()
        assignment = client._fetcher._subscriptions.subscription.assignment
        state = (
            assignment.state_value(TopicPartition(tp.topic, tp.partition)) if assignment else None
        )
        if state is None or not state.has_valid_position:
            return
        super().verify_event_path(now, tp)

    async def _seek_stream_partitions(self) -> Mapping[TP, int | None]:
        """On the consumer thread: each assigned partition that is not a changelog, sought to
        its committed offset, or to the beginning of the partition when none is committed (the
        app reads from the earliest offset)."""
        consumer: AIOKafkaConsumer = self._thread._ensure_consumer()
        committed: dict[TP, int | None] = {}
        for tp in consumer.assignment():
            if tp.topic not in self._changelogs:
                committed[TP(tp.topic, tp.partition)] = await consumer.committed(tp)
        await _seek(consumer, committed)
        return committed

    async def getmany(
        self,
        timeout: float,  # noqa: ASYNC109 (Faust's signature)
    ) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's batches; when a seek begins while one is handed over, the rest of its
        records from the partitions sought are dropped (the changelogs' still go to recovery)."""
        if not self._read_epoch % 2:
            if self._seek_again:
                try:
                    await self._thread.call_thread(self._seek_to_the_last_sought, self._seek_again)
                except Exception as error:
                    # No fetch until it is done: it would come from past the records dropped.
                    log.warning(
                        "seeking back %d partitions failed, retrying: %r",
                        len(self._seek_again),
                        error,
                    )
                    await self.sleep(1.0)
                    return
                self._read_again |= self._seek_again
                self._seek_again = set()
            if self._read_again:
                last = self._sought_to
                self._read_offset.update(
                    {tp: _last_read(last[tp]) for tp in self._read_again if tp in last}
                )
                self._read_again = set()
        self._batch_epoch = self._read_epoch
        batch = super().getmany(timeout)
        try:
            async for tp, message in batch:
                if self._stale(tp):
                    self._seek_again.add(tp)
                else:
                    yield tp, message
        finally:
            await batch.aclose()  # type: ignore[attr-defined]

    async def _seek_to_the_last_sought(self, tps: set[TP]) -> None:
        """On the consumer thread: ``tps``, still assigned, back where the last seek put them."""
        consumer: AIOKafkaConsumer = self._thread._ensure_consumer()
        assigned = {TP(tp.topic, tp.partition) for tp in consumer.assignment()}
        last = self._sought_to
        await _seek(consumer, {tp: last[tp] for tp in tps if tp in assigned and tp in last})

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # A message of a batch from before the seek, compared with the offset the seek reset:
        # the offsets in between were read, not missing.
        if not self._stale(tp):
            await super()._add_gap(tp, offset_from, offset_to)

    def ack(self, message: Message) -> bool:
        """Faust's acknowledgement, except for a message from an earlier consumer generation:
        its partition was given up and is read again from the committed offset."""
        if message.generation_id != self.app.consumer_generation_id:
            with ack_lock:
                message.acked = True
                self._unacked_messages.discard(message)
            return False
        return super().ack(message)


def _reading_start(offset: int | None) -> int:
    """Where recovery reads a changelog partition from: its offset, or its start if none."""
    return offset if isinstance(offset, int) and offset >= 0 else 0


def _last_read(committed: int | None) -> int | None:
    """The "last offset read" Faust's read loop compares the next message with after a seek to
    ``committed`` (``None`` when nothing was committed, which turns its gap check off)."""
    return committed if committed and committed > 0 else None


async def _seek(consumer: AIOKafkaConsumer, offsets: Mapping[TP, int | None]) -> None:
    """Seek each partition to its committed offset, or to its beginning when none is committed
    (aiokafka's own seek to the committed offsets leaves those where they are)."""
    from_the_beginning = []
    for tp, offset in offsets.items():
        partition = TopicPartition(tp.topic, tp.partition)
        if offset is None or offset <= 0:
            from_the_beginning.append(partition)
        else:
            consumer.seek(partition, offset)
    if from_the_beginning:
        await consumer.seek_to_beginning(*from_the_beginning)

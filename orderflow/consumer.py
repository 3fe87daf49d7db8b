"""The worker's Kafka consumer: seek-safe, fetching as the settings say, and handing each
message to the streams without a task per message.

Faust's read loop (``Consumer._drain_messages``) hands every message over as
``wait_first(callback(message), suspend_flow.wait())``: two tasks and an ``asyncio.wait`` per
message, so that a rebalance can abandon a hand-over that blocks (on suspended flow control, a
full producer buffer or a full stream queue). That costs two turns of the event loop per
message, and a busy worker's loop turns slowly: the loop then hands over fewer messages per
second than the agents could handle, every topic's messages queue up before any agent sees
them, and latency grows while the CPU is not even busy (bench/results/saga_throughput_*.md).

:class:`WorkerConsumer` awaits the hand-over directly when nothing can block it: flow is not
suspended, the producer buffer is not over its limit, and no queue the message goes to is full.
The hand-over then runs to its end without giving up the loop, exactly as it would in the task.
Otherwise it goes through ``wait_first`` as in Faust, so a rebalance still abandons it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from mode import Service, ServiceT

from orderflow.resilience.ending import end_worker
from orderflow.resilience.produce_ledger import ProduceLedger
from orderflow.resilience.seeks import SeekSafeConsumer
from orderflow.settings import Settings

# Faust's read loop lets the event loop run after this many messages handed over in a row.
YIELD_EVERY = 100


class WorkerConsumer(SeekSafeConsumer):
    """Faust's aiokafka consumer with orderflow's seeks, fetch settings and direct hand-over.

    Faust fixes a fetch's wait (1.5 s) and leaves its minimum size at Kafka's 1 byte;
    ``ORDERFLOW_CONSUMER_FETCH_MIN_BYTES`` and ``ORDERFLOW_CONSUMER_FETCH_WAIT`` set both.
    """

    def __init__(self, settings: Settings, *args: Any, **kwargs: Any) -> None:
        self.fetch_min_bytes = settings.consumer_fetch_min_bytes
        self.fetch_wait_ms = round(settings.consumer_fetch_wait * 1000)
        super().__init__(*args, **kwargs)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit, unless a record produced since the start failed: the messages that caused it
        must be read again, so the worker ends without committing (Faust flushed the producer
        just before, so every record sent for these offsets has been answered)."""
        ledger: ProduceLedger | None = getattr(self.app.producer, "ledger", None)
        failure = ledger.failure() if ledger is not None else None
        if failure is not None:
            end_worker(f"not committing {len(offsets)} offsets: {failure}")
        return bool(await super()._commit(offsets))

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _FetchingThread(self, loop=self.loop, beacon=self.beacon)

    def _hands_over_at_once(self, tp: TP) -> bool:
        """Whether handing a message of ``tp`` to its streams cannot block: the conductor's
        callback then neither waits for flow control nor for the producer buffer, and puts
        the message in every queue without waiting for room."""
        app = self.app
        if self.suspend_flow.is_set() or not app.flow_control.is_active():
            return False
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages:
            return False
        channels = cast(Any, app.topics)._tp_index.get(tp, ())
        return not any(channel.queue.full() for channel in channels)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        """Faust 0.15.3's read loop (``faust.transport.consumer.Consumer._drain_messages``),
        with the direct hand-over; everything else as there."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        hands_over_at_once = self._hands_over_at_once
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records = getmany(timeout=1.0)
                await self.sleep(0)  # getmany may be called in a loop that never yields
                if self.should_stop:
                    continue
                async for tp, message in records:
                    since_yield += 1
                    if since_yield > YIELD_EVERY:
                        await asyncio.sleep(0)
                        since_yield = 0
                    offset = message.offset
                    read_offset = get_read_offset(tp)
                    if read_offset is not None and offset < read_offset:
                        continue  # read before: dropped, as Faust does
                    gap = bool(read_offset) and offset - (read_offset or 0) > 1
                    if gap and read_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, read_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if hands_over_at_once(tp):
                        await callback(message)
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class _FetchingThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        client: AIOKafkaConsumer = super()._create_worker_consumer(transport)
        consumer = cast(WorkerConsumer, self.consumer)
        # Read by the client's start(), when it builds its fetcher.
        client._fetch_min_bytes = consumer.fetch_min_bytes
        client._fetch_max_wait_ms = consumer.fetch_wait_ms
        return client

"""A producer buffer whose flush waits for every buffered message.

Faust queues table changelog records (and every ``send_soon``) in the producer's buffer, and
flushes it before each offset commit, so that a committed offset never gets ahead of the table
writes it caused. But Faust's ``ProducerBuffer.flush`` gives up as soon as one message takes
more than 0.1 s to be handed to the Kafka client (``flush_atmost`` returns on that timeout):
on a busy worker, or while the client waits for a new partition's metadata, the commit then
goes ahead with changelog records still in the buffer, and a worker killed at that moment
loses them although their source offsets are committed.

:class:`DrainingProducerBuffer` counts the messages put and the messages handed over; its
flush returns once everything put before the call has been handed to the client, whose own
flush (called next by the producer) then waits for the broker's acknowledgements. It also
counts the messages Kafka acknowledged and those that failed, so that a stopping worker can tell
whether every table write reached the changelogs (:func:`undelivered`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from faust.transport.producer import ProducerBuffer
from faust.types import FutureMessage

log = logging.getLogger(__name__)

SLOW_FLUSH = 5.0  # seconds a flush waits before it says so
# Messages the buffer holds before the streams wait for it to ebb (Faust: 100). A worker's read
# loop hands a fetched batch over at once, and every table write of its handlers goes through
# the buffer: 100 made the whole worker wait for the buffer once per few orders.
MAX_MESSAGES = 1000
# Unsettled messages beyond which a put settles the oldest: kept low, because holding resolved
# futures costs more than looking at them (bench/producer_buffer.py).
SETTLE_AFTER = 64


def _failed(fut: FutureMessage) -> bool:
    """Whether a settled message failed: it will never be written to Kafka."""
    return fut.cancelled() or fut.exception() is not None


class DrainingProducerBuffer(ProducerBuffer):
    max_messages = MAX_MESSAGES

    def __post_init__(self) -> None:
        super().__post_init__()
        self.put_count = 0
        self.handed_count = 0  # sent to the client, or failed (the failure is the future's)
        self.acknowledged_count = 0  # of the settled ones: written to Kafka
        self.failed_count = 0  # of the settled ones: never will be
        # Messages put and not yet counted as settled, oldest first. Settling looks at the
        # head only: a done callback on every message would cost a turn of the event loop each.
        self._unsettled: deque[FutureMessage] = deque()
        self._handed = asyncio.Event()

    def put(self, fut: FutureMessage) -> None:
        super().put(fut)
        self.put_count += 1
        self._unsettled.append(fut)
        if len(self._unsettled) > SETTLE_AFTER:
            self._settle()

    def _settle(self) -> None:
        """Count the messages at the head of the line that Kafka has acknowledged or failed."""
        unsettled = self._unsettled
        while unsettled and unsettled[0].done():
            if _failed(unsettled.popleft()):
                self.failed_count += 1
            else:
                self.acknowledged_count += 1

    def tally(self) -> tuple[int, int, int]:
        """Of the messages put so far: how many Kafka acknowledged, how many failed, and how many
        wait for it."""
        self._settle()
        acknowledged, failed, waiting = self.acknowledged_count, self.failed_count, 0
        for fut in self._unsettled:
            if not fut.done():
                waiting += 1
            elif _failed(fut):
                failed += 1
            else:
                acknowledged += 1
        return acknowledged, failed, waiting

    async def _send_pending(self, fut: FutureMessage) -> None:
        try:
            await super()._send_pending(fut)
        except BaseException as error:
            if not fut.done():  # the client never took it: it failed, and says so to its waiters
                fut.set_exception(error)
            raise
        finally:
            self.handed_count += 1
            self._handed.set()

    async def wait_until_ebb(self) -> None:
        """Wait until the buffer holds at most ``max_messages``.

        Faust's waits for each message handed over in an ``asyncio.wait_for`` of its own (a
        task and a timer per message) and gives up after 0.1 s without one; this one wakes at
        most once a turn of the event loop, whatever the number of messages handed meanwhile.
        """
        while self.size > self.max_messages:
            if self.state not in ("running", "stopping"):
                # Nothing drains it (as Faust's, which raises the same from its flush).
                raise RuntimeError(f"Cannot wait for the producer buffer: it is {self.state}")
            self._handed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handed.wait(), timeout=1.0)

    async def flush(self) -> None:
        """Wait until every message put before this call has been handed to the client.

        The buffer's own stop flushes too, while its sending task still runs; once that task
        is gone ("shutdown", "crashed") nothing can drain, as in Faust's flush."""
        self._settle()  # what the client's last flush saw acknowledged
        target = self.put_count
        started = time.monotonic()
        warned = False
        while self.handed_count < target:
            if self.state not in ("running", "stopping"):
                raise RuntimeError(f"Cannot flush: the producer buffer is {self.state}")
            self._handed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handed.wait(), timeout=1.0)
            if not warned and time.monotonic() - started > SLOW_FLUSH:
                warned = True
                log.warning(
                    "producer buffer: %d messages not handed to the Kafka client after %.0f s",
                    target - self.handed_count,
                    SLOW_FLUSH,
                )


def install(producer: Any) -> None:
    """Give ``producer`` (not started yet) a draining buffer in place of Faust's. A threaded
    producer (``producer_threaded``, which orderflow does not use) keeps Faust's buffer: its
    messages do not pass through the buffer's sending task."""
    if producer.app.conf.producer_threaded:
        return
    buffer = DrainingProducerBuffer(loop=producer.loop, beacon=producer.beacon)
    buffer.app = producer.app
    producer.buffer = buffer


def undelivered(producer: Any) -> str | None:
    """What Kafka has not acknowledged of the messages put in ``producer``'s buffer (every table
    write among them), or None when it acknowledged them all. A buffer that does not count (Faust's
    own, which a threaded producer keeps) cannot show that they arrived."""
    buffer = producer.buffer
    if not isinstance(buffer, DrainingProducerBuffer):
        return f"{type(buffer).__name__} does not count acknowledgements"
    acknowledged, failed, waiting = buffer.tally()
    if acknowledged == buffer.put_count:
        return None
    return (
        f"{buffer.put_count} put, {acknowledged} acknowledged, {failed} failed, {waiting} waiting"
    )

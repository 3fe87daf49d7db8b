"""Every record the worker produces is checked before the offsets that caused it are committed.

Faust flushes its producer before it commits consumed offsets, but a flush only waits: a record
Kafka refused (a message too large, a delivery that timed out, a topic that is gone) fails its
future and the commit goes ahead, so the message that caused it is never read again and its
effect is lost. :class:`ProduceLedger` watches the future of every record the producer sends;
the worker's consumer asks it before each commit (after the flush), and a worker with a failed
record commits nothing more and ends, to read those messages again (orderflow.consumer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import Any

# Futures kept before the settled ones at the head are let go (they are looked at in order).
SETTLE_AFTER = 256


class ProduceLedger:
    def __init__(self) -> None:
        self._pending: deque[asyncio.Future[Any]] = deque()
        self.failed = 0
        self.first_failure: str | None = None

    def watch(self, sent: Awaitable[Any]) -> None:
        if not isinstance(sent, asyncio.Future):
            return  # delivered already (a threaded or a test producer's answer)
        self._pending.append(sent)
        if len(self._pending) > SETTLE_AFTER:
            self.settle()

    def settle(self) -> None:
        """Look at the records Kafka has answered, oldest first."""
        pending = self._pending
        while pending and pending[0].done():
            future = pending.popleft()
            # A send is cancelled only when the producer itself is torn down (a stop), whose
            # last commit is checked against the buffer's count (orderflow.app).
            error = None if future.cancelled() else future.exception()
            if error is not None:
                self.failed += 1
                if self.first_failure is None:
                    self.first_failure = repr(error)

    def failure(self) -> str | None:
        """Why a record produced so far failed, or None while none did (after a flush, every
        record sent before it has been answered)."""
        self.settle()
        if not self.failed:
            return None
        return f"{self.failed} produced record(s) failed, the first with {self.first_failure}"


def install(producer: Any) -> ProduceLedger:
    """Watch every record ``producer`` sends (its ``send`` wrapped, as it is not started yet)."""
    ledger = ProduceLedger()
    send = producer.send

    async def watched_send(*args: Any, **kwargs: Any) -> Any:
        sent = await send(*args, **kwargs)
        ledger.watch(sent)
        return sent

    producer.send = watched_send
    producer.ledger = ledger
    return ledger

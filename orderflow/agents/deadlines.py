"""The saga's deadline timer: tells each late saga of this worker's partitions that its step
deadline has passed, once, without scanning every open saga every second.

The ``saga_deadlines`` table holds the deadline of every open saga (the saga agent keeps it, in
the saga's changelog partition). The timer keeps a heap of (when to look, order id, deadline)
in memory: the saga agent adds each deadline it writes, and the heap is rebuilt from the table
after every rebalance (once recovery is done, when the table holds exactly this worker's open
sagas) and every ``rescan_every`` seconds as a safety net. Each tick pops only the entries due.

A due entry whose deadline is still the saga's gets one DeadlineExpired and goes back in the
heap ``resend_after`` seconds later: if the saga has moved on by then (it handled the expiry, or
a reply came first), the entry is dropped as stale; if not (the expiry is still queued behind a
backlog, or its send was lost), it is sent once more. So a lagging saga agent gets one expiry
per saga per ``resend_after``, not one per second, and overload no longer feeds itself.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from orderflow import schemas
from orderflow.observability import metrics
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish


class DeadlineTimer:
    def __init__(
        self,
        deadlines: TypedTable[float],
        bus: Bus,
        *,
        resend_after: float,
        rescan_every: float = 60.0,
        generation: Callable[[], int],
        settled: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deadlines = deadlines
        self.bus = bus
        self.resend_after = resend_after
        self.rescan_every = rescan_every
        self._generation = generation
        self._settled = settled  # no rebalance or table recovery in progress
        self._clock = clock
        self._due: list[tuple[float, str, float]] = []  # (when to look, order id, deadline)
        self._built: tuple[int, float] | None = None  # (generation, when) of the last rebuild

    def track(self, order_id: str, deadline: float) -> None:
        """A deadline the saga agent just wrote (it comes due at the deadline itself)."""
        heapq.heappush(self._due, (deadline, order_id, deadline))

    def pending(self) -> int:
        """Entries in the heap (stale ones included until they come due)."""
        return len(self._due)

    async def tick(self) -> int:
        """Send DeadlineExpired for every due deadline; returns how many were sent."""
        if not self._settled():
            return 0  # the table is being recovered or handed over: look again next tick
        now = self._clock()
        generation = self._generation()
        if (
            self._built is None
            or self._built[0] != generation
            or now - self._built[1] >= self.rescan_every
        ):
            self._rebuild(generation, now)
        sent = 0
        while self._due and self._due[0][0] <= now:
            _, order_id, deadline = heapq.heappop(self._due)
            if self.deadlines.get(order_id) != deadline:
                continue  # the saga moved on (or its partition is another worker's now)
            expired = schemas.DeadlineExpired(
                **schemas.envelope(order_id), order_id=order_id, deadline=deadline
            )
            await publish(self.bus.saga_replies, order_id, expired)
            heapq.heappush(self._due, (now + self.resend_after, order_id, deadline))
            sent += 1
        return sent

    def _rebuild(self, generation: int, now: float) -> None:
        entries = [(deadline, order_id, deadline) for order_id, deadline in self.deadlines.items()]
        heapq.heapify(entries)
        self._due = entries
        self._built = (generation, now)
        metrics.SAGAS_IN_FLIGHT.set(len(entries))

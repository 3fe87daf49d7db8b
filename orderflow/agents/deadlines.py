"""The saga's deadline timer: tells each late saga of this worker's partitions that its step
deadline has passed, once, without scanning every open saga every second.

The ``saga_deadlines`` table indexes the open sagas (the saga agent writes a key when a saga
opens and deletes it when it closes, in the saga's changelog partition: two records per order,
not one per step). Each saga's current deadline is in its state (the ``sagas`` table). The timer
keeps a heap of (when to look, order id, deadline) in memory: the saga agent tells it every
deadline it sets, and the heap is rebuilt after every rebalance (once recovery is done, when the
index holds exactly this worker's open sagas) and every ``rescan_every`` seconds as a safety
net, from the index and each open saga's state. Each tick pops only the entries due.

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
        open_sagas: TypedTable[float],
        current: Callable[[str], float | None],
        bus: Bus,
        *,
        resend_after: float,
        rescan_every: float = 60.0,
        generation: Callable[[], int],
        settled: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.open_sagas = open_sagas
        self._current = current  # the saga's deadline now, from its state (None: none)
        self.bus = bus
        self.resend_after = resend_after
        self.rescan_every = rescan_every
        self._generation = generation
        self._settled = settled  # no rebalance or table recovery in progress
        self._clock = clock
        self._due: list[tuple[float, str, float]] = []  # (when to look, order id, deadline)
        self._latest: dict[str, float] = {}  # each tracked saga's latest deadline
        self._built: tuple[int, float] | None = None  # (generation, when) of the last rebuild

    def track(self, order_id: str, deadline: float) -> None:
        """A deadline the saga agent just set (it comes due at the deadline itself)."""
        if self._latest.get(order_id) != deadline:
            self._latest[order_id] = deadline
            heapq.heappush(self._due, (deadline, order_id, deadline))

    def forget(self, order_id: str) -> None:
        """The saga closed: its entries in the heap are dropped as they come due."""
        self._latest.pop(order_id, None)

    def pending(self) -> int:
        """Entries in the heap (stale ones included until they come due)."""
        return len(self._due)

    async def tick(self) -> int:
        """Send DeadlineExpired for every due deadline; returns how many were sent."""
        if not self._settled():
            return 0  # the tables are being recovered or handed over: look again next tick
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
            if self._latest.get(order_id) != deadline:
                continue  # superseded by a later deadline, or the saga closed
            current = self._current(order_id)
            if current != deadline:  # the saga moved on (or its partition is another's now)
                self.forget(order_id)
                if current is not None and order_id in self.open_sagas:
                    self.track(order_id, current)
                continue
            expired = schemas.DeadlineExpired(
                **schemas.envelope(order_id), order_id=order_id, deadline=deadline
            )
            await publish(self.bus.saga_replies, order_id, expired)
            heapq.heappush(self._due, (now + self.resend_after, order_id, deadline))
            sent += 1
        return sent

    def _rebuild(self, generation: int, now: float) -> None:
        self._due, self._latest = [], {}
        for order_id in self.open_sagas:
            deadline = self._current(order_id)
            if deadline is not None:
                self._latest[order_id] = deadline
                self._due.append((deadline, order_id, deadline))
        heapq.heapify(self._due)
        self._built = (generation, now)
        metrics.SAGAS_IN_FLIGHT.set(len(self._latest))

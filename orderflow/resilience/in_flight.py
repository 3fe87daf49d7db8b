"""The events agents have taken from their streams and not yet finished with.

When a rebalance revokes partitions, Faust suspends the streams, drops the events still queued
for the agents and then waits (``Consumer.wait_empty``) until every message delivered to a
stream has been acknowledged. That wait counts deliveries per message, not per stream: when
two agents read one topic (the two sinks of ``orders.documents``, the two read-model agents of
``orders.events``) and one agent's copy is dropped from its queue while the other agent still
holds the message (its last event, its last batch), the message is never acknowledged and the
rebalance waits forever; the whole group stops with it.

orderflow waits instead for what matters: the events its handlers and sinks are working on
right now (:meth:`OrderflowApp._consumer_wait_empty`). Whatever was dropped unprocessed is
not acknowledged, so its offset is not committed and it is delivered again after the
rebalance; every handler is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """A count of events in progress, and a way to wait until there are none."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return self._count

    def begin(self, events: int = 1) -> None:
        """Count ``events`` as in progress (pair with :meth:`end`, in a ``finally``)."""
        self._count += events
        self._idle.clear()

    def end(self, events: int = 1) -> None:
        self._count -= events
        if self._count == 0:
            self._idle.set()

    @contextmanager
    def hold(self, events: int = 1) -> Iterator[None]:
        """Count ``events`` as in progress for the duration of the block."""
        self.begin(events)
        try:
            yield
        finally:
            self.end(events)

    async def wait_idle(self) -> None:
        """Return once no event is in progress."""
        await self._idle.wait()

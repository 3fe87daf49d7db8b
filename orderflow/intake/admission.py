"""Admission: new orders are refused at the door while the saga is too far behind to finish them.

An order accepted while the pipeline is hours of work behind would wait out its step deadlines
in the queues and be rejected for ``timeout``: accepting it helps nobody and adds to the pile.
So each worker samples how far behind the saga is, and while a bound is passed, placing an
order answers 503 with ``Retry-After`` before anything is stored. Orders already accepted are
never dropped; cancels and reads are always served.

Two signals, sampled every ``SAMPLE_INTERVAL`` seconds:

* the age of the oldest command the outbox relay has not published yet (PostgreSQL; the same
  for every worker), bounded by ``ORDERFLOW_INTAKE_MAX_OUTBOX_AGE``;
* how long this worker's saga partitions (orders.commands, saga.replies, inventory.commands,
  payments.commands) would take to work off the records they have left to read, at the pace
  they were worked off over the last ``PACE_WINDOW`` seconds, bounded by
  ``ORDERFLOW_INTAKE_MAX_SAGA_DELAY``: an order accepted now waits about that long in front of
  each of its steps, so past a fraction of the step timeout it would time out. Every worker
  carries its share of the same load, so its own partitions tell how the group is doing.

A bound of 0 turns its check off.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orderflow.db import DatabaseUnavailable
from orderflow.sinks.outbox_relay import outbox_lag

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 0.5
# How long a refused client is asked to wait, at least and at most.
MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 30


PACE_WINDOW = 10.0  # seconds of progress the saga's pace is measured over
NOISE = 50  # records to read that say nothing about a backlog


@dataclass(frozen=True, slots=True)
class Backlog:
    outbox_age: float  # seconds the oldest unpublished command has waited
    saga_lag: int  # records not yet read on the saga's partitions of this worker
    saga_delay: float = 0.0  # seconds to work them off at the recent pace


class Pace:
    """How many saga records per second this worker worked off over the last PACE_WINDOW
    seconds, from its committed offsets (which move at every commit, a few seconds apart)."""

    def __init__(self, window: float = PACE_WINDOW) -> None:
        self.window = window
        self._committed: dict[Any, int] = {}
        self._samples: deque[tuple[float, int]] = deque()  # (when, records since the last)

    def observe(self, now: float, committed: Mapping[Any, int]) -> float | None:
        """The pace in records per second, or None before half a window of samples."""
        # A partition that was just assigned has no earlier offset: no progress counted.
        progress = sum(
            max(offset - self._committed[tp], 0)
            for tp, offset in committed.items()
            if tp in self._committed
        )
        self._committed = dict(committed)
        self._samples.append((now, progress))
        while now - self._samples[0][0] > self.window:
            self._samples.popleft()
        span = now - self._samples[0][0]
        if span < self.window / 2:
            return None
        return sum(records for _, records in list(self._samples)[1:]) / span


def delay(lag: int, pace: float | None) -> float:
    """Seconds to work off ``lag`` records at ``pace``; 0 for a lag of fewer than ``NOISE``
    records (offsets are committed every few seconds, so an idle worker's committed offsets may
    trail the end of its partitions by a record or so), and 0 while the pace is unknown or nil:
    no progress at all is a rebalance or a stall, which the stall watchdog handles, and refusing
    orders through every rebalance would cost more availability than it saves."""
    if lag < NOISE or not pace:
        return 0.0
    return lag / pace


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after: int  # whole seconds, for the Retry-After header


class Admission:
    """The latest backlog sample, and whether it lets a new order in."""

    def __init__(self, max_outbox_age: float, max_saga_delay: float) -> None:
        self.max_outbox_age = max_outbox_age
        self.max_saga_delay = max_saga_delay
        self.backlog = Backlog(0.0, 0)

    def observe(self, backlog: Backlog) -> None:
        was, self.backlog = self.refusal(), backlog
        now = self.refusal()
        if (was is None) != (now is None):
            if now is None:
                log.info("intake: taking orders again (%s)", backlog)
            else:
                log.warning("intake: refusing new orders: %s", now.reason)

    def refusal(self) -> Refusal | None:
        """Why a new order is refused now, or None when it is welcome."""
        backlog = self.backlog
        if self.max_outbox_age and backlog.outbox_age > self.max_outbox_age:
            return Refusal(
                f"accepted orders wait {backlog.outbox_age:.1f} s to be published "
                f"(more than {self.max_outbox_age:g} s)",
                _seconds(backlog.outbox_age - self.max_outbox_age),
            )
        if self.max_saga_delay and backlog.saga_delay > self.max_saga_delay:
            return Refusal(
                f"the saga's {backlog.saga_lag} records to read take {backlog.saga_delay:.1f} s "
                f"to work off (more than {self.max_saga_delay:g} s)",
                _seconds(backlog.saga_delay - self.max_saga_delay),
            )
        return None


def _seconds(value: float) -> int:
    return max(MIN_RETRY_AFTER, math.ceil(min(float(MAX_RETRY_AFTER), value)))


async def sample_forever(
    admission: Admission,
    outbox_age: Callable[[], Awaitable[float | None]],
    saga_lag: Callable[[], Awaitable[tuple[int, float] | None]],
    sleep: Callable[[float], Awaitable[None]],
    stopping: Callable[[], bool],
) -> None:
    """Keep ``admission`` up to date. A signal that cannot be read (PostgreSQL down, no
    partitions yet) counts as no backlog: refusing orders then would not protect anything, and
    the intake answers 503 by itself when PostgreSQL is down."""
    while not stopping():
        try:
            age = await outbox_age()
            lag, saga_delay = await saga_lag() or (0, 0.0)
            admission.observe(Backlog(age or 0.0, lag, saga_delay))
        except Exception:
            log.exception("intake: sampling the backlog failed")
        await sleep(SAMPLE_INTERVAL)


# The saga's path: a backlog here is what makes orders wait out their step deadlines.
SAGA_PATH = ("orders.commands", "saga.replies", "inventory.commands", "payments.commands")


def register(app: OrderflowApp) -> None:
    """Sample the backlog on every worker, for its intake."""
    settings = app.settings
    saga_path = frozenset(settings.topic(name) for name in SAGA_PATH)

    async def outbox_age() -> float | None:
        try:
            return (await outbox_lag(app.database))["oldest_pending_seconds"]
        except DatabaseUnavailable:
            return None

    pace = Pace()

    async def saga_lag() -> tuple[int, float] | None:
        """The records left to read on this worker's saga partitions, and the seconds it
        takes to work them off at the recent pace."""
        if app.rebalancing:
            return None
        consumer = app.consumer
        committed_offsets = consumer._committed_offset  # type: ignore[attr-defined]
        lag, committed = 0, {}
        for tp in consumer.assignment():
            if tp.topic in saga_path:
                highwater, done = consumer.highwater(tp), committed_offsets.get(tp)
                committed[tp] = done or 0
                if highwater is not None:
                    lag += max(highwater - (done or 0), 0)
        return lag, delay(lag, pace.observe(time.monotonic(), committed))

    async def sample_backlog() -> None:
        # app.sleep returns at once when the worker stops: the loop must end then, or it would
        # spin (the consumer's thread is gone) and hang the stop.
        await sample_forever(
            app.admission, outbox_age, saga_lag, app.sleep, lambda: app.should_stop
        )

    app.task(sample_backlog)

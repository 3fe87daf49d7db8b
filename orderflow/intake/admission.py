"""Admission: new orders are refused at the door while the saga is too far behind to finish them.

An order accepted while the pipeline is hours of work behind would wait out its step deadlines
in the queues and be rejected for ``timeout``: accepting it helps nobody and adds to the pile.
So each worker samples how far behind the saga is, and while a bound is passed, placing an
order answers 503 with ``Retry-After`` before anything is stored. Orders already accepted are
never dropped; cancels and reads are always served.

Two signals, sampled every ``SAMPLE_INTERVAL`` seconds:

* the age of the oldest command the outbox relay has not published yet (PostgreSQL; the same
  for every worker), bounded by ``ORDERFLOW_INTAKE_MAX_OUTBOX_AGE``;
* the records not yet read on the saga's own partitions of this worker (orders.commands,
  saga.replies, inventory.commands, payments.commands), bounded by
  ``ORDERFLOW_INTAKE_MAX_SAGA_LAG``. Every worker carries its share of the same load, so its
  own partitions tell how the group is doing.

A bound of 0 turns its check off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orderflow.db import DatabaseUnavailable
from orderflow.sinks.outbox_relay import outbox_lag

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 0.5
# How long a refused client is asked to wait, at least and at most.
MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 30


@dataclass(frozen=True, slots=True)
class Backlog:
    outbox_age: float  # seconds the oldest unpublished command has waited
    saga_lag: int  # records not yet read on the saga's partitions of this worker


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after: int  # whole seconds, for the Retry-After header


class Admission:
    """The latest backlog sample, and whether it lets a new order in."""

    def __init__(self, max_outbox_age: float, max_saga_lag: int) -> None:
        self.max_outbox_age = max_outbox_age
        self.max_saga_lag = max_saga_lag
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
        if self.max_saga_lag and backlog.saga_lag > self.max_saga_lag:
            # As long again as the excess took to build up, at the bound's pace: a guess, but
            # one that grows with the backlog and is capped.
            excess = backlog.saga_lag / self.max_saga_lag
            return Refusal(
                f"the saga has {backlog.saga_lag} records to read (more than {self.max_saga_lag})",
                _seconds(excess),
            )
        return None


def _seconds(value: float) -> int:
    return max(MIN_RETRY_AFTER, min(MAX_RETRY_AFTER, math.ceil(value)))


async def sample_forever(
    admission: Admission,
    outbox_age: Callable[[], Awaitable[float | None]],
    saga_lag: Callable[[], Awaitable[int | None]],
    sleep: Callable[[float], Awaitable[None]],
    stopping: Callable[[], bool],
) -> None:
    """Keep ``admission`` up to date. A signal that cannot be read (PostgreSQL down, no
    partitions yet) counts as no backlog: refusing orders then would not protect anything, and
    the intake answers 503 by itself when PostgreSQL is down."""
    while not stopping():
        try:
            age = await outbox_age()
            lag = await saga_lag()
            admission.observe(Backlog(age or 0.0, lag or 0))
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

    async def saga_lag() -> int | None:
        if app.rebalancing:
            return None
        consumer = app.consumer
        committed = consumer._committed_offset  # type: ignore[attr-defined]
        lag = 0
        for tp in consumer.assignment():
            if tp.topic in saga_path:
                highwater, done = consumer.highwater(tp), committed.get(tp)
                if highwater is not None:
                    lag += max(highwater - (done or 0), 0)
        return lag

    async def sample_backlog() -> None:
        # app.sleep returns at once when the worker stops: the loop must end then, or it would
        # spin (the consumer's thread is gone) and hang the stop.
        await sample_forever(
            app.admission, outbox_age, saga_lag, app.sleep, lambda: app.should_stop
        )

    app.task(sample_backlog)

"""Admission: new orders are refused at the door while the saga is too far behind to finish them.

An order accepted while the pipeline is hours of work behind would wait out its step deadlines
in the queues and be rejected for ``timeout``: accepting it helps nobody and adds to the pile.
So each worker samples how far behind the saga is, and while a bound is passed, placing an
order answers 503 with ``Retry-After`` before anything is stored. Orders already accepted are
never dropped; cancels and reads are always served.

Two signals, sampled every ``SAMPLE_INTERVAL`` seconds:

* the age of the oldest command the outbox relay has not published yet (PostgreSQL; the same
  for every worker), bounded by ``ORDERFLOW_INTAKE_MAX_OUTBOX_AGE``;
* how long the messages of the saga's path (the saga, inventory and payments handlers) waited
  between being produced and being handled on this worker, the longest since the last sample,
  bounded by ``ORDERFLOW_INTAKE_MAX_SAGA_DELAY``: an order accepted now waits about as long in
  front of each of its steps, so past a good part of the step timeout it would time out. This
  is measured where the waiting happens, whatever the load: a record count or a pace would
  read an idle worker's small burst as a backlog. A rebalance or a stall handles nothing, so
  it refuses nothing either (the stall watchdog deals with stalls). Every worker carries its
  share of the same load, so its own handlers tell how the group is doing.

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
    saga_wait: float = 0.0  # the longest a saga-path message waited to be handled, lately


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after: int  # whole seconds, for the Retry-After header


class Admission:
    """The latest backlog sample, and whether it lets a new order in."""

    def __init__(self, max_outbox_age: float, max_saga_delay: float) -> None:
        self.max_outbox_age = max_outbox_age
        self.max_saga_delay = max_saga_delay
        self.backlog = Backlog(0.0)
        self._longest_wait = 0.0  # since the last sample

    def waited(self, seconds: float) -> None:
        """A saga-path message was handled ``seconds`` after it was produced."""
        if seconds > self._longest_wait:
            self._longest_wait = seconds

    def longest_wait(self) -> float:
        """The longest wait since the last call (0 when nothing was handled)."""
        longest, self._longest_wait = self._longest_wait, 0.0
        return longest

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
        if self.max_saga_delay and backlog.saga_wait > self.max_saga_delay:
            return Refusal(
                f"the saga's messages wait {backlog.saga_wait:.1f} s to be handled "
                f"(more than {self.max_saga_delay:g} s)",
                _seconds(backlog.saga_wait - self.max_saga_delay),
            )
        return None


def _seconds(value: float) -> int:
    return max(MIN_RETRY_AFTER, math.ceil(min(float(MAX_RETRY_AFTER), value)))


async def sample_forever(
    admission: Admission,
    outbox_age: Callable[[], Awaitable[float | None]],
    sleep: Callable[[float], Awaitable[None]],
    stopping: Callable[[], bool],
) -> None:
    """Keep ``admission`` up to date. An outbox age that cannot be read (PostgreSQL down)
    counts as no backlog: refusing orders then would protect nothing, and the intake answers
    503 by itself when PostgreSQL is down."""
    while not stopping():
        try:
            age = await outbox_age()
            admission.observe(Backlog(age or 0.0, admission.longest_wait()))
        except Exception:
            log.exception("intake: sampling the backlog failed")
        await sleep(SAMPLE_INTERVAL)


# The handlers on the saga's path: their messages' waits are what new orders would wait.
SAGA_PATH = frozenset({"saga", "inventory", "payments"})


def register(app: OrderflowApp) -> None:
    """Sample the backlog on every worker, for its intake."""

    async def outbox_age() -> float | None:
        try:
            return (await outbox_lag(app.database))["oldest_pending_seconds"]
        except DatabaseUnavailable:
            return None

    async def sample_backlog() -> None:
        # app.sleep returns at once when the worker stops: the loop must end then, or it would
        # spin and hang the stop.
        await sample_forever(app.admission, outbox_age, app.sleep, lambda: app.should_stop)

    app.task(sample_backlog)

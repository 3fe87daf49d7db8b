"""Retry with exponential backoff and full jitter, and what is worth retrying.

Transient errors (a dependency that is down, slow or refusing for now) are retried; permanent
ones (a message that can never be processed as it is) are not: they go to the dead-letter
topic at once.

``retry`` is the one retry loop: every place that tries an operation again (the handlers, the
sinks, the dead-letter sender, the outbox relay) runs it, with its own policy, classifier,
interruption, give-up action and hooks.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from orderflow.db import DatabaseUnavailable
from orderflow.errors import OrderflowError
from orderflow.payments.gateway import GatewayTimeout, GatewayUnavailable
from orderflow.resilience.policy import RetryPolicy

__all__ = [
    "TRANSIENT",
    "FailedAttempt",
    "RetryInterrupted",
    "RetryPolicy",
    "TransientError",
    "is_transient",
    "retry",
    "retry_after",
]

T = TypeVar("T")

# policy.delay grows as 2 ** (attempt - 1); past this many attempts it stays where it is (the
# cap of any one wait is reached long before, and 2 ** 1024 would overflow a float).
MAX_DELAY_EXPONENT = 30
POLL_INTERVAL = 0.2  # seconds between looks at the interruption while waiting


class TransientError(OrderflowError):
    """Raised by a handler for a failure that may succeed if tried again later."""


TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    GatewayTimeout,
    GatewayUnavailable,
    DatabaseUnavailable,
    ConnectionError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, KafkaTimeoutError | KafkaConnectionError):
        return True  # the broker is slow or away: it may well answer later
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    return isinstance(error, TRANSIENT)


def retry_after(error: BaseException) -> float | None:
    """The wait the other side asked for (an open breaker's ``retry_after``), if any."""
    hint = getattr(error, "retry_after", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool) and hint >= 0:
        return float(hint)
    return None


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """The last failure of an operation, as the hooks and the give-up action see it."""

    error: Exception
    attempts: int  # attempts made so far, this one included
    first_failure_at: float  # wall-clock time of the first failure
    last_failure_at: float  # wall-clock time of this one
    delay: float = 0.0  # seconds before the next attempt; 0 when there is none


class RetryInterrupted(Exception):
    """The interruption began while ``retry`` waited for the next attempt: it gave up waiting,
    and the operation was not tried again. ``failed`` is the last failure (also the cause)."""

    def __init__(self, failed: FailedAttempt) -> None:
        super().__init__(f"interrupted after {failed.attempts} attempt(s): {failed.error!r}")
        self.failed = failed


async def retry(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    transient: Callable[[BaseException], bool] = is_transient,
    forever: bool = False,
    give_up: Callable[[FailedAttempt], Awaitable[T]] | None = None,
    interrupted: Callable[[], bool] | None = None,
    on_retry: Callable[[FailedAttempt], object] | None = None,
    honour_retry_after: bool = True,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    now: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    poll: float = POLL_INTERVAL,
) -> T:
    """Run ``operation`` until it returns, and return what it returns.

    - A failure that ``transient`` calls permanent ends the loop at once. So does a transient
      one on attempt ``policy.max_attempts``, unless ``forever`` (then the loop goes on; the
      hooks see ``attempts`` pass ``max_attempts`` and may act on it).
    - At that end, ``give_up(failure)`` is awaited and its result returned; without
      ``give_up`` the error is raised again.
    - Otherwise ``on_retry(failure)`` runs (awaited if it returns an awaitable), then the loop
      waits ``policy.delay(attempt)`` (full jitter; the exponent stops growing at
      MAX_DELAY_EXPONENT), or the error's ``retry_after`` if that is longer and
      ``honour_retry_after``, and tries again.
    - ``interrupted`` is looked at before every slice of at most ``poll`` seconds of that wait
      and once at its end: when it is true, the wait ends and RetryInterrupted is raised (from
      the last error) without another attempt. An attempt under way is never interrupted, and
      nothing is looked at before the first attempt.
    - Cancellation (CancelledError is not an Exception) is never retried.
    """
    attempt = 0
    first_failure_at: float | None = None
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as error:
            failed_at = now()
            if first_failure_at is None:
                first_failure_at = failed_at
            exhausted = not forever and attempt >= policy.max_attempts
            if exhausted or not transient(error):
                failed = FailedAttempt(error, attempt, first_failure_at, failed_at)
                if give_up is None:
                    raise
                return await give_up(failed)
            delay = policy.delay(min(attempt, MAX_DELAY_EXPONENT), rng)
            hint = retry_after(error) if honour_retry_after else None
            if hint is not None:
                delay = max(delay, hint)
            failed = FailedAttempt(error, attempt, first_failure_at, failed_at, delay)
            if on_retry is not None:
                outcome = on_retry(failed)
                if inspect.isawaitable(outcome):
                    await outcome
        if interrupted is None:
            await sleep(delay)
            continue
        remaining = delay
        while True:
            if interrupted():
                raise RetryInterrupted(failed) from failed.error
            if remaining <= 1e-9:  # what float subtraction leaves of a finished wait
                break
            step = min(remaining, poll)
            await sleep(step)
            remaining -= step

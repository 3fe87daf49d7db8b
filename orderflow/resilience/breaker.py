"""A circuit breaker: closed, open, half-open.

Closed, calls go through and consecutive failures are counted; at ``failure_threshold`` the
breaker opens. Open, calls fail at once with BreakerOpen (a transient error: the caller waits
and retries later) until ``open_seconds`` have passed. Then it is half-open: up to
``half_open_trials`` calls go through; if they all succeed it closes, the first failure opens
it again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from orderflow.resilience.retry import TransientError, is_transient

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(TransientError):
    """The breaker is open: the call was not attempted."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name} is open; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5
    open_seconds: float = 10.0
    half_open_trials: int = 1


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitBreaker], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials_in_flight = 0
        self._trial_successes = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.retry_after() <= 0:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial call through."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.open_seconds - self._clock())

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        is_failure: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """Run ``operation`` through the breaker; errors that are not failures pass through."""
        state = self.state
        if state is BreakerState.OPEN:
            raise BreakerOpen(self.name, self.retry_after())
        if state is BreakerState.HALF_OPEN:
            if self._trials_in_flight >= self.config.half_open_trials:
                raise BreakerOpen(self.name, 0.1)
            self._trials_in_flight += 1
        try:
            result = await operation()
        except BaseException as error:
            if state is BreakerState.HALF_OPEN:
                self._trials_in_flight -= 1
            if isinstance(error, Exception) and is_failure(error):
                self._failed()
            raise
        if state is BreakerState.HALF_OPEN:
            self._trials_in_flight -= 1
        self._succeeded()
        return result

    def _failed(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.config.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _succeeded(self) -> None:
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._trial_successes += 1
            if self._trial_successes >= self.config.half_open_trials:
                self._set(BreakerState.CLOSED)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        self._trial_successes = 0
        if state is not BreakerState.HALF_OPEN:
            self._trials_in_flight = 0
        if self._on_change is not None:
            self._on_change(self)

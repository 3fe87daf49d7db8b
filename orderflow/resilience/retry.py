"""Retry with exponential backoff and full jitter, and what is worth retrying.

Transient errors (a dependency that is down, slow or refusing for now) are retried; permanent
ones (a message that can never be processed as it is) are not: they go to the dead-letter
topic at once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from orderflow.db import DatabaseUnavailable
from orderflow.errors import OrderflowError
from orderflow.payments.gateway import GatewayTimeout, GatewayUnavailable


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
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    return isinstance(error, TRANSIENT)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.1  # seconds before the first retry, at most
    max_delay: float = 5.0  # the cap of any one wait

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform between 0 and min(cap, base * 2**(attempt - 1))."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(0, ceiling)

    async def wait(self, attempt: int) -> None:
        await asyncio.sleep(self.delay(attempt))

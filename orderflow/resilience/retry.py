"""Retry with exponential backoff and full jitter, and what is worth retrying.

Transient errors (a dependency that is down, slow or refusing for now) are retried; permanent
ones (a message that can never be processed as it is) are not: they go to the dead-letter
topic at once.
"""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from orderflow.db import DatabaseUnavailable
from orderflow.errors import OrderflowError
from orderflow.payments.gateway import GatewayTimeout, GatewayUnavailable
from orderflow.resilience.policy import RetryPolicy

__all__ = ["TRANSIENT", "RetryPolicy", "TransientError", "is_transient"]


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

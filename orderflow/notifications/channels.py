"""Notification channels: where the notifications agent hands a notification over.

A channel delivers or raises. :class:`ChannelUnavailable` (no answer in time, connection
refused, 5xx) is transient: the agent retries, then dead-letters the event for replay.
:class:`ChannelRefused` (4xx) is final. Email, SMS or push providers plug in as further
:class:`Channel` implementations; the webhook channel covers any HTTP endpoint (a provider's
API, a chat webhook, a company's own notification service).
"""

from __future__ import annotations

from typing import Protocol, Self

import aiohttp

from orderflow.domain.notifications import Notification
from orderflow.errors import OrderflowError
from orderflow.resilience.retry import TransientError

CONNECTION_LIMIT = 50


class ChannelRefused(OrderflowError):
    """The channel refused the notification for good (retrying cannot help)."""


class ChannelUnavailable(TransientError):
    """The channel could not take the notification now."""


class Channel(Protocol):
    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver ``notification``; its id is the idempotency key of the delivery."""
        ...

    async def close(self) -> None: ...


class WebhookChannel:
    """POSTs each notification as JSON to one URL, with ``Idempotency-Key: <notification id>``.

    The session is created on first use, inside the worker's running loop; ``timeout`` bounds
    each whole call.
    """

    name = "webhook"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTION_LIMIT),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        try:
            async with self._session.post(
                self.url,
                json=notification.payload(),
                headers={"Idempotency-Key": notification.id},
            ) as response:
                status = response.status
                text = (await response.text())[:200]
        except TimeoutError as error:
            raise ChannelUnavailable(
                f"the notification webhook did not answer within {self.timeout}s"
            ) from error
        except aiohttp.ClientError as error:
            raise ChannelUnavailable(f"the notification webhook is unreachable: {error}") from error
        if status >= 500 or status == 429:
            raise ChannelUnavailable(f"the notification webhook answered {status}: {text}")
        if status >= 400:
            raise ChannelRefused(f"the notification webhook refused {notification.id}: {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

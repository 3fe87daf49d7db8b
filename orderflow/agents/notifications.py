"""Notifications: tell the customer when their order is confirmed, rejected or cancelled.

Reads orders.events (keyed by order id) and keeps, per order, what it sent in the
``notifications`` table, so a redelivered or re-sent outcome event sends nothing twice. A crash
between the delivery and the table write sends the notification again with the same id, which
the channel passes on as the idempotency key. Deliveries go through the ``notifications``
circuit breaker; a channel that stays down has the event retried and then dead-lettered, for
replay once it is back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from faust.types import EventT, StreamT

from orderflow import schemas, tables, topics
from orderflow.app import app
from orderflow.domain import notifications
from orderflow.notifications.channels import Channel, WebhookChannel
from orderflow.observability import metrics
from orderflow.resilience.breaker import CircuitBreaker
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError

BREAKER = "notifications"
ORDER_EVENTS = (
    schemas.OrderPlaced,
    schemas.OrderConfirmed,
    schemas.OrderRejected,
    schemas.OrderCancelled,
)
SENT = "sent"
SKIPPED = "skipped"


async def notify(channel: Channel | None, breaker: CircuitBreaker, event: schemas.Message) -> None:
    """Send the notification ``event`` calls for, unless it was sent already."""
    if not isinstance(event, ORDER_EVENTS):
        raise SchemaError(f"{type(event).__name__} is not an order event")
    notification = notifications.notification_for(event)
    if notification is None:
        return
    history = tables.notifications.get(notification.order_id) or []
    if notifications.already_recorded(history, notification):
        return
    if channel is None:
        status, channel_name = SKIPPED, "none"
        metrics.NOTIFICATIONS_SKIPPED.labels(notification.kind).inc()
    else:
        await breaker.call(lambda: channel.send(notification))
        status, channel_name = SENT, channel.name
        metrics.NOTIFICATIONS_SENT.labels(notification.kind, channel.name).inc()
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    tables.notifications[notification.order_id] = notifications.record(
        history, notification, channel_name, status, at
    )


def configured_channel() -> Channel | None:
    settings = app.settings
    if not settings.notification_webhook_url:
        return None
    return WebhookChannel(settings.notification_webhook_url, timeout=settings.notification_timeout)


@app.agent(topics.orders_events)
async def customer_notifications(stream: StreamT[bytes]) -> None:
    channel = configured_channel()
    breaker = app.breaker(BREAKER)

    async def handle(event: schemas.Message, _: EventT[Any]) -> None:
        await notify(channel, breaker, event)

    try:
        await process(app, stream, handle, "notifications")
    finally:
        if channel is not None:
            await channel.close()

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
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.domain import notifications
from orderflow.notifications.channels import Channel, WebhookChannel
from orderflow.observability import metrics
from orderflow.resilience.breaker import CircuitBreaker
from orderflow.resilience.handling import process_by_key
from orderflow.schemas.codec import SchemaError
from orderflow.settings import Settings
from orderflow.tables.typed import TypedTable

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

BREAKER = "notifications"
ORDER_EVENTS = (
    schemas.OrderPlaced,
    schemas.OrderConfirmed,
    schemas.OrderRejected,
    schemas.OrderCancelled,
)
SENT = "sent"
SKIPPED = "skipped"


async def notify(
    sent: TypedTable[list[dict[str, Any]]],
    channel: Channel | None,
    breaker: CircuitBreaker,
    event: schemas.Message,
) -> None:
    """Send the notification ``event`` calls for, unless ``sent`` records it already."""
    if not isinstance(event, ORDER_EVENTS):
        raise SchemaError(f"{type(event).__name__} is not an order event")
    notification = notifications.notification_for(event)
    if notification is None:
        return
    history = sent.get(notification.order_id) or []
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
    sent[notification.order_id] = notifications.record(
        history, notification, channel_name, status, at
    )


def configured_channel(settings: Settings) -> Channel | None:
    if not settings.notification_webhook_url:
        return None
    return WebhookChannel(settings.notification_webhook_url, timeout=settings.notification_timeout)


def register(app: OrderflowApp) -> None:
    @app.agent(app.bus.orders_events, name=f"{__name__}.customer_notifications")
    async def customer_notifications(stream: StreamT[bytes]) -> None:
        channel = configured_channel(app.settings)
        breaker = app.breaker(BREAKER)
        sent = app.data.notifications

        async def handle(event: schemas.Message, _: EventT[Any]) -> None:
            await notify(sent, channel, breaker, event)

        try:
            # Deliveries of different orders overlap; one order's events stay in order.
            await process_by_key(app, stream, handle, "notifications")
        finally:
            if channel is not None:
                await channel.close()

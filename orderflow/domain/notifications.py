"""What a customer is told when their order reaches an outcome. Pure: no Faust, no I/O.

One notification per order and outcome: its id is ``<order id>/<kind>``, so a redelivered or
re-sent outcome event maps to the notification already sent, and a channel can use the id as
an idempotency key when a crash between sending and recording makes the agent send it again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orderflow import schemas

CONFIRMED = "order_confirmed"
REJECTED = "order_rejected"
CANCELLED = "order_cancelled"
KINDS = (CONFIRMED, REJECTED, CANCELLED)

# At most this many notifications are remembered per order (an order has at most two
# outcomes: rejected or confirmed, then cancelled).
HISTORY_LIMIT = 8

REASONS = {
    "out_of_stock": "an item is out of stock",
    "payment_declined": "the payment was declined",
    "timeout": "it could not be completed in time",
}


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    kind: str
    order_id: str
    customer_id: str
    subject: str
    body: str

    def payload(self) -> dict[str, Any]:
        return asdict(self)


def notification_for(event: schemas.Message) -> Notification | None:
    """The notification an order event calls for, if any (OrderPlaced calls for none)."""
    match event:
        case schemas.OrderConfirmed():
            kind = CONFIRMED
            subject = f"Order {event.order_id} is confirmed"
            body = f"Your order {event.order_id} is confirmed and paid ({event.payment_id})."
        case schemas.OrderRejected():
            kind = REJECTED
            why = REASONS.get(event.reason, event.reason.replace("_", " "))
            subject = f"Order {event.order_id} could not be completed"
            body = f"Your order {event.order_id} could not be completed: {why}."
            if event.detail:
                body += f" ({event.detail})"
        case schemas.OrderCancelled():
            kind = CANCELLED
            subject = f"Order {event.order_id} is cancelled"
            body = f"Your order {event.order_id} is cancelled; any payment is released."
        case _:
            return None
    return Notification(
        id=f"{event.order_id}/{kind}",
        kind=kind,
        order_id=event.order_id,
        customer_id=event.customer_id,
        subject=subject,
        body=body,
    )


def already_recorded(history: list[dict[str, Any]], notification: Notification) -> bool:
    return any(entry["id"] == notification.id for entry in history)


def record(
    history: list[dict[str, Any]], notification: Notification, channel: str, status: str, at: str
) -> list[dict[str, Any]]:
    """``history`` with ``notification`` added (``status``: sent or skipped)."""
    entry = {
        "id": notification.id,
        "kind": notification.kind,
        "channel": channel,
        "status": status,
        "at": at,
    }
    return [*history, entry][-HISTORY_LIMIT:]

"""Commands to the order saga (topic orders.commands) and events about orders (orders.events)."""

from __future__ import annotations

import faust

from orderflow.schemas.envelope import Message


class OrderLine(faust.Record, namespace="orderflow.OrderLine", serializer="json"):
    sku: str
    quantity: int
    unit_price: int  # minor units of the order's currency


class PlaceOrder(Message, namespace="orderflow.PlaceOrder"):
    order_id: str
    customer_id: str
    currency: str
    lines: list[OrderLine]
    payment_token: str


class CancelOrder(Message, namespace="orderflow.CancelOrder"):
    order_id: str
    reason: str


class OrderPlaced(Message, namespace="orderflow.OrderPlaced"):
    order_id: str
    customer_id: str
    currency: str
    lines: list[OrderLine]
    total: int
    version: int
    # When the saga started (occurred_at is when this copy was sent: a re-sent OrderPlaced
    # keeps the original placed_at). Added after v1: absent (None) in older payloads.
    placed_at: str | None = None


class OrderConfirmed(Message, namespace="orderflow.OrderConfirmed"):
    order_id: str
    customer_id: str
    payment_id: str
    version: int


class OrderRejected(Message, namespace="orderflow.OrderRejected"):
    order_id: str
    customer_id: str
    reason: str  # out_of_stock, payment_declined, timeout
    detail: str
    version: int


class OrderCancelled(Message, namespace="orderflow.OrderCancelled"):
    order_id: str
    customer_id: str
    reason: str
    version: int


OrderEvent = OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled

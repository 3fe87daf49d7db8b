"""Replies to the order saga (topic saga.replies, keyed by order id)."""

from __future__ import annotations

from orderflow.schemas.envelope import Message


class StockReserved(Message, namespace="orderflow.StockReserved"):
    order_id: str
    sku: str
    quantity: int


class StockRejected(Message, namespace="orderflow.StockRejected"):
    order_id: str
    sku: str
    requested: int
    available: int


class PaymentAuthorized(Message, namespace="orderflow.PaymentAuthorized"):
    order_id: str
    payment_id: str


class PaymentDeclined(Message, namespace="orderflow.PaymentDeclined"):
    order_id: str
    reason: str


class PaymentUnavailable(Message, namespace="orderflow.PaymentUnavailable"):
    """The gateway could not take the payment now; the saga asks again after retry_after."""

    order_id: str
    reason: str
    retry_after: float


class DeadlineExpired(Message, namespace="orderflow.DeadlineExpired"):
    """Sent by the saga timer when an order's step deadline has passed."""

    order_id: str
    deadline: float

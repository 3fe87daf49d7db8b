"""Commands to the payments context (topic payments.commands, keyed by order id)."""

from __future__ import annotations

from orderflow.schemas.envelope import Message


class AuthorizePayment(Message, namespace="orderflow.AuthorizePayment"):
    order_id: str
    amount: int  # minor units
    currency: str
    token: str


class VoidPayment(Message, namespace="orderflow.VoidPayment"):
    """Void (or refund) whatever was authorized for the order; nothing if nothing was."""

    order_id: str
    reason: str

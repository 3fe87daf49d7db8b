"""The order as clients read it: one document per order, its statuses, and how events change it.

The read model (``orders_view``), the order's API answer, and the documents the sinks project
into Elasticsearch and MongoDB are all this document; its fields are spelled here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TypedDict, cast

from orderflow.domain.orders import Line


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"

    @property
    def closed(self) -> bool:
        """Nothing more can happen to the order (a confirmed one can still be cancelled)."""
        return self in (OrderStatus.REJECTED, OrderStatus.CANCELLED)


class LineDocument(TypedDict):
    sku: str
    quantity: int
    unit_price: int


class StatusChange(TypedDict):
    status: str
    at: str


class OrderDocument(TypedDict):
    order_id: str
    customer_id: str
    status: str  # an OrderStatus value
    lines: list[LineDocument]
    total: int
    currency: str
    reason: str | None
    detail: str | None
    payment_id: str | None
    placed_at: str
    updated_at: str
    history: list[StatusChange]


class VersionedOrderDocument(OrderDocument):
    version: int  # the saga's version of the last event applied


def line_documents(lines: Sequence[Line]) -> list[LineDocument]:
    return [{"sku": li.sku, "quantity": li.quantity, "unit_price": li.unit_price} for li in lines]


def pending(
    order_id: str, customer_id: str, currency: str, lines: list[LineDocument], at: str
) -> OrderDocument:
    """A placed order that has no outcome yet."""
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": OrderStatus.PENDING,
        "lines": lines,
        "total": sum(line["quantity"] * line["unit_price"] for line in lines),
        "currency": currency,
        "reason": None,
        "detail": None,
        "payment_id": None,
        "placed_at": at,
        "updated_at": at,
        "history": [{"status": OrderStatus.PENDING, "at": at}],
    }


def public(document: VersionedOrderDocument) -> OrderDocument:
    """The document without the read model's bookkeeping (its version)."""
    shown = dict(document)
    del shown["version"]
    return cast(OrderDocument, shown)

"""Read models built from orders.events: one document per order, recent orders per customer.

Every order document also goes to orders.documents, for the search and document stores.

Every order event carries the saga's version; an event whose version is not newer than the
document's is a repeat (a redelivery or a re-send after a crash) and changes nothing.
"""

from __future__ import annotations

from typing import Any

from faust.types import EventT, StreamT

from orderflow import schemas, tables, topics
from orderflow.app import app
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError, decode

CUSTOMER_ORDERS_KEPT = 100  # a customer's list stays bounded; older orders are in orders_view

OUTCOMES: dict[type[schemas.Message], str] = {
    schemas.OrderConfirmed: "CONFIRMED",
    schemas.OrderRejected: "REJECTED",
    schemas.OrderCancelled: "CANCELLED",
}


def project_order(view: dict[str, Any] | None, event: schemas.Message) -> dict[str, Any] | None:
    """The order document after ``event``; None when the event changes nothing."""
    version: int = event.version
    if view is not None and version <= view["version"]:
        return None
    at = event.occurred_at
    match event:
        case schemas.OrderPlaced():
            at = event.placed_at or at  # the original time, also in a re-sent copy
            return {
                "order_id": event.order_id,
                "customer_id": event.customer_id,
                "status": "PENDING",
                "lines": [
                    {"sku": li.sku, "quantity": li.quantity, "unit_price": li.unit_price}
                    for li in event.lines
                ],
                "total": event.total,
                "currency": event.currency,
                "reason": None,
                "detail": None,
                "payment_id": None,
                "placed_at": at,
                "updated_at": at,
                "history": [{"status": "PENDING", "at": at}],
                "version": version,
            }
        case schemas.OrderConfirmed() if view is not None:
            changes: dict[str, Any] = {"status": "CONFIRMED", "payment_id": event.payment_id}
        case schemas.OrderRejected() if view is not None:
            changes = {"status": "REJECTED", "reason": event.reason, "detail": event.detail}
        case schemas.OrderCancelled() if view is not None:
            changes = {"status": "CANCELLED", "reason": event.reason}
        case _:
            return None
    history = [*view["history"], {"status": changes["status"], "at": at}]
    return {**view, **changes, "history": history, "updated_at": at, "version": version}


def summarize(order: dict[str, Any]) -> dict[str, Any]:
    keep = ("order_id", "status", "total", "currency", "placed_at", "updated_at", "version")
    return {field: order[field] for field in keep}


def project_customer(
    orders: list[dict[str, Any]], event: schemas.Message
) -> list[dict[str, Any]] | None:
    """The customer's recent orders after ``event``; None when it changes nothing."""
    order_id: str = event.order_id
    version: int = event.version
    current = next((o for o in orders if o["order_id"] == order_id), None)
    if isinstance(event, schemas.OrderPlaced):
        if current is not None:
            return None
        placed = project_order(None, event)
        assert placed is not None
        updated = [summarize(placed), *orders]
    else:
        status = OUTCOMES.get(type(event))
        if current is None or status is None or version <= current["version"]:
            return None
        changed = {**current, "status": status, "updated_at": event.occurred_at, "version": version}
        updated = [changed if o is current else o for o in orders]
    updated.sort(key=lambda o: o["placed_at"], reverse=True)
    kept = updated[:CUSTOMER_ORDERS_KEPT]
    return None if kept == orders else kept  # an order too old to be kept changes nothing


async def _update_order(event: schemas.Message, _: EventT[Any]) -> None:
    if not isinstance(event, (schemas.OrderPlaced, *OUTCOMES)):
        raise SchemaError(f"{type(event).__name__} is not an order event")
    order_id: str = event.order_id
    view = tables.orders_view.get(order_id)
    updated = project_order(view, event)
    if updated is not None:
        tables.orders_view[order_id] = updated
    elif view is not None and event.version == view["version"]:
        updated = view  # the last change again: its document may not have left before a crash
    else:
        return
    await topics.publish_document(topics.orders_documents, order_id, updated)


async def _update_customer(event: schemas.Message, _: EventT[Any]) -> None:
    if not isinstance(event, (schemas.OrderPlaced, *OUTCOMES)):
        raise SchemaError(f"{type(event).__name__} is not an order event")
    customer_id: str = event.customer_id
    updated = project_customer(tables.customer_orders.get(customer_id) or [], event)
    if updated is not None:
        tables.customer_orders[customer_id] = updated


def _customer_of(raw: bytes) -> str:
    """The re-keying key; an undecodable event gets one anyway and is dead-lettered after."""
    try:
        return str(decode(raw).customer_id)
    except (SchemaError, AttributeError):
        return ""


@app.agent(topics.orders_events)
async def order_documents(stream: StreamT[bytes]) -> None:
    await process(app, stream, _update_order, "order-documents")


@app.agent(topics.orders_events)
async def customer_order_lists(stream: StreamT[bytes]) -> None:
    # Re-keyed by customer, so each customer's list is written by the worker that owns it.
    by_customer = stream.group_by(_customer_of, name="orders-by-customer")
    await process(app, by_customer, _update_customer, "customer-orders")

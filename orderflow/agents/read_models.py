"""Read models built from orders.events: one document per order, recent orders per customer.

Every order document also goes to orders.documents, for the search and document stores.

Every order event carries the saga's version; an event whose version is not newer than the
document's is a repeat (a redelivery or a re-send after a crash) and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.domain import order_document
from orderflow.domain.order_document import OrderStatus, VersionedOrderDocument
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError, decode
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish_document

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

CUSTOMER_ORDERS_KEPT = 100  # a customer's list stays bounded; older orders are in orders_view

OUTCOMES: dict[type[schemas.Message], OrderStatus] = {
    schemas.OrderConfirmed: OrderStatus.CONFIRMED,
    schemas.OrderRejected: OrderStatus.REJECTED,
    schemas.OrderCancelled: OrderStatus.CANCELLED,
}


def project_order(
    view: VersionedOrderDocument | None, event: schemas.Message
) -> VersionedOrderDocument | None:
    """The order document after ``event``; None when the event changes nothing."""
    version: int = event.version
    if view is not None and version <= view["version"]:
        return None
    at = event.occurred_at
    changed: VersionedOrderDocument
    match event:
        case schemas.OrderPlaced():
            at = event.placed_at or at  # the original time, also in a re-sent copy
            lines = order_document.line_documents(event.lines)
            placed = order_document.pending(
                event.order_id, event.customer_id, event.currency, lines, at
            )
            return {**placed, "version": version}
        case schemas.OrderConfirmed() if view is not None:
            changed = {**view, "status": OrderStatus.CONFIRMED, "payment_id": event.payment_id}
        case schemas.OrderRejected() if view is not None:
            changed = {
                **view,
                "status": OrderStatus.REJECTED,
                "reason": event.reason,
                "detail": event.detail,
            }
        case schemas.OrderCancelled() if view is not None:
            changed = {**view, "status": OrderStatus.CANCELLED, "reason": event.reason}
        case _:
            return None
    # ``changed`` is a new dict: its history, time and version are set in place.
    changed["history"] = [*view["history"], {"status": changed["status"], "at": at}]
    changed["updated_at"] = at
    changed["version"] = version
    return changed


def summarize(order: VersionedOrderDocument) -> dict[str, Any]:
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "total": order["total"],
        "currency": order["currency"],
        "placed_at": order["placed_at"],
        "updated_at": order["updated_at"],
        "version": order["version"],
    }


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


def _order_event(event: schemas.Message) -> None:
    if not isinstance(event, (schemas.OrderPlaced, *OUTCOMES)):
        raise SchemaError(f"{type(event).__name__} is not an order event")


class OrderDocuments:
    """orders.events → ``orders_view`` → orders.documents."""

    def __init__(self, views: TypedTable[VersionedOrderDocument], bus: Bus) -> None:
        self.views = views
        self.bus = bus

    async def __call__(self, event: schemas.Message, _: EventT[Any]) -> None:
        _order_event(event)
        order_id: str = event.order_id
        view = self.views.get(order_id)
        updated = project_order(view, event)
        if updated is not None:
            self.views[order_id] = updated
        elif view is not None and event.version == view["version"]:
            updated = view  # the last change again: its document may not have left in a crash
        else:
            return
        await publish_document(self.bus.orders_documents, order_id, dict(updated))


class CustomerOrderLists:
    """orders.events, re-keyed by customer → ``customer_orders``."""

    def __init__(self, lists: TypedTable[list[dict[str, Any]]]) -> None:
        self.lists = lists

    async def __call__(self, event: schemas.Message, _: EventT[Any]) -> None:
        _order_event(event)
        customer_id: str = event.customer_id
        updated = project_customer(self.lists.get(customer_id) or [], event)
        if updated is not None:
            self.lists[customer_id] = updated


def _customer_of(raw: bytes) -> str:
    """The re-keying key; an undecodable event gets one anyway and is dead-lettered after."""
    try:
        return str(decode(raw).customer_id)
    except (SchemaError, AttributeError):
        return ""


def register(app: OrderflowApp) -> None:
    documents = OrderDocuments(app.data.orders_view, app.bus)
    lists = CustomerOrderLists(app.data.customer_orders)

    @app.agent(app.bus.orders_events, name=f"{__name__}.order_documents")
    async def order_documents(stream: StreamT[bytes]) -> None:
        await process(app, stream, documents, "order-documents")

    @app.agent(app.bus.orders_events, name=f"{__name__}.customer_order_lists")
    async def customer_order_lists(stream: StreamT[bytes]) -> None:
        # Re-keyed by customer, so each customer's list is written by the worker that owns it.
        by_customer = stream.group_by(_customer_of, name="orders-by-customer")
        await process(app, by_customer, lists, "customer-orders")

"""The read model built from orders.events: one document per order (``orders_view``).

Every order document also goes to orders.documents, for the search and document stores; a
customer's list of orders is a search of that index (orderflow.views.orders).

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
from orderflow.schemas.codec import SchemaError
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish_document

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

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


def register(app: OrderflowApp) -> None:
    documents = OrderDocuments(app.data.orders_view, app.bus)

    @app.agent(app.bus.orders_events, name=f"{__name__}.order_documents")
    async def order_documents(stream: StreamT[bytes]) -> None:
        await process(app, stream, documents, "order-documents")

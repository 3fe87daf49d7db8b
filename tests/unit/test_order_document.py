"""The order document (orderflow.domain.order_document) and its statuses."""

from __future__ import annotations

from orderflow.domain import order_document
from orderflow.domain.order_document import OrderStatus
from orderflow.domain.orders import Line
from orderflow.domain.saga import Status


def test_a_pending_order_totals_its_lines_and_starts_its_history() -> None:
    lines = order_document.line_documents([Line("A", 2, 150), Line("B", 1, 99)])
    document = order_document.pending("o-1", "c-1", "EUR", lines, "2026-12-01T10:00:00+00:00")
    assert document["status"] == OrderStatus.PENDING == "PENDING"
    assert document["total"] == 399
    assert document["lines"] == [
        {"sku": "A", "quantity": 2, "unit_price": 150},
        {"sku": "B", "quantity": 1, "unit_price": 99},
    ]
    assert document["history"] == [{"status": "PENDING", "at": "2026-12-01T10:00:00+00:00"}]
    assert (document["reason"], document["detail"], document["payment_id"]) == (None, None, None)


def test_the_public_document_leaves_out_the_version_only() -> None:
    placed = order_document.pending("o-2", "c-1", "USD", [], "2026-12-01T10:00:00+00:00")
    versioned: order_document.VersionedOrderDocument = {**placed, "version": 3}
    assert order_document.public(versioned) == placed
    assert versioned["version"] == 3  # the read model's copy is left as it is


def test_only_rejected_and_cancelled_orders_are_closed() -> None:
    assert {s for s in OrderStatus if s.closed} == {OrderStatus.REJECTED, OrderStatus.CANCELLED}


def test_the_saga_statuses_map_onto_the_order_statuses() -> None:
    assert {s: s.order_status for s in Status} == {
        Status.RESERVING: OrderStatus.PENDING,
        Status.AUTHORIZING: OrderStatus.PENDING,
        Status.CONFIRMED: OrderStatus.CONFIRMED,
        Status.REJECTED: OrderStatus.REJECTED,
        Status.CANCELLED: OrderStatus.CANCELLED,
    }

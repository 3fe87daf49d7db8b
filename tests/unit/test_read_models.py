"""The read model of an order: its document, built from orders.events."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orderflow import schemas
from orderflow.agents.read_models import project_order


def at(second: int) -> str:
    return f"2025-01-01T00:{second // 60:02d}:{second % 60:02d}.000000+00:00"


def _envelope(order_id: str, second: int) -> dict[str, Any]:
    return {**schemas.envelope(order_id), "occurred_at": at(second)}


def placed(order_id: str = "o-1", second: int = 0, customer_id: str = "c-1") -> schemas.Message:
    return schemas.OrderPlaced(
        **_envelope(order_id, second),
        order_id=order_id,
        customer_id=customer_id,
        currency="EUR",
        lines=[
            schemas.OrderLine(sku="SKU-1", quantity=2, unit_price=250),
            schemas.OrderLine(sku="SKU-2", quantity=1, unit_price=1_000),
        ],
        total=1_500,
        version=1,
    )


def confirmed(version: int, order_id: str = "o-1", second: int = 5) -> schemas.Message:
    return schemas.OrderConfirmed(
        **_envelope(order_id, second),
        order_id=order_id,
        customer_id="c-1",
        payment_id="pay-1",
        version=version,
    )


def rejected(version: int, order_id: str = "o-1", second: int = 5) -> schemas.Message:
    return schemas.OrderRejected(
        **_envelope(order_id, second),
        order_id=order_id,
        customer_id="c-1",
        reason="out_of_stock",
        detail="SKU-1: requested 2, available 1",
        version=version,
    )


def cancelled(version: int, order_id: str = "o-1", second: int = 9) -> schemas.Message:
    return schemas.OrderCancelled(
        **_envelope(order_id, second),
        order_id=order_id,
        customer_id="c-1",
        reason="customer",
        version=version,
    )


def view_of(*events: schemas.Message) -> dict[str, Any]:
    view: dict[str, Any] | None = None
    for event in events:
        updated = project_order(view, event)
        assert updated is not None, f"{type(event).__name__} changed nothing"
        view = updated
    assert view is not None
    return view


# --- project_order ---------------------------------------------------------------------------


def test_order_placed_creates_a_pending_document() -> None:
    assert project_order(None, placed()) == {
        "order_id": "o-1",
        "customer_id": "c-1",
        "status": "PENDING",
        "lines": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": 250},
            {"sku": "SKU-2", "quantity": 1, "unit_price": 1_000},
        ],
        "total": 1_500,
        "currency": "EUR",
        "reason": None,
        "detail": None,
        "payment_id": None,
        "placed_at": at(0),
        "updated_at": at(0),
        "history": [{"status": "PENDING", "at": at(0)}],
        "version": 1,
    }


def test_confirmed_sets_the_status_and_payment() -> None:
    pending = view_of(placed())
    before = copy.deepcopy(pending)
    view = project_order(pending, confirmed(4))
    assert view is not None
    assert view["status"] == "CONFIRMED"
    assert view["payment_id"] == "pay-1"
    assert view["version"] == 4
    assert view["updated_at"] == at(5)
    assert view["placed_at"] == at(0)
    assert view["history"] == [
        {"status": "PENDING", "at": at(0)},
        {"status": "CONFIRMED", "at": at(5)},
    ]
    assert view["reason"] is None
    assert pending == before  # the previous document is not changed in place


def test_rejected_sets_reason_and_detail() -> None:
    view = view_of(placed(), rejected(2))
    assert view["status"] == "REJECTED"
    assert view["reason"] == "out_of_stock"
    assert view["detail"] == "SKU-1: requested 2, available 1"
    assert view["payment_id"] is None
    assert [h["status"] for h in view["history"]] == ["PENDING", "REJECTED"]
    assert view["version"] == 2


def test_cancelled_after_confirmed_keeps_the_payment_and_the_history() -> None:
    view = view_of(placed(), confirmed(4), cancelled(5))
    assert view["status"] == "CANCELLED"
    assert view["reason"] == "customer"
    assert view["payment_id"] == "pay-1"
    assert view["history"] == [
        {"status": "PENDING", "at": at(0)},
        {"status": "CONFIRMED", "at": at(5)},
        {"status": "CANCELLED", "at": at(9)},
    ]
    assert view["updated_at"] == at(9)
    assert view["version"] == 5


@pytest.mark.parametrize("make", [confirmed, rejected, cancelled])
@pytest.mark.parametrize("version", [4, 3])
def test_an_event_that_is_not_newer_changes_nothing(make: Any, version: int) -> None:
    view = view_of(placed(), confirmed(4))
    assert project_order(view, make(version)) is None


def test_a_repeated_order_placed_changes_nothing() -> None:
    view = view_of(placed())
    assert project_order(view, placed(second=30)) is None
    later = view_of(placed(), rejected(2))
    assert project_order(later, placed(second=30)) is None


@pytest.mark.parametrize("make", [confirmed, rejected, cancelled])
def test_an_outcome_before_the_order_was_placed_changes_nothing(make: Any) -> None:
    assert project_order(None, make(2)) is None

"""Read models: the order document and a customer's recent orders, built from orders.events."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orderflow import schemas
from orderflow.agents.read_models import (
    CUSTOMER_ORDERS_KEPT,
    project_customer,
    project_order,
    summarize,
)


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


# --- project_customer ------------------------------------------------------------------------


def test_a_placed_order_is_added_as_a_summary() -> None:
    assert project_customer([], placed()) == [
        {
            "order_id": "o-1",
            "status": "PENDING",
            "total": 1_500,
            "currency": "EUR",
            "placed_at": at(0),
            "updated_at": at(0),
            "version": 1,
        }
    ]


def test_summarize_keeps_only_the_list_fields() -> None:
    summary = summarize(view_of(placed(), confirmed(4)))
    assert set(summary) == {
        "order_id",
        "status",
        "total",
        "currency",
        "placed_at",
        "updated_at",
        "version",
    }
    assert summary["status"] == "CONFIRMED"


def test_orders_are_listed_newest_first() -> None:
    orders: list[dict[str, Any]] = []
    for order_id, second in [("o-b", 20), ("o-c", 30), ("o-a", 10)]:  # o-a arrives last
        updated = project_customer(orders, placed(order_id, second))
        assert updated is not None
        orders = updated
    assert [o["order_id"] for o in orders] == ["o-c", "o-b", "o-a"]


@pytest.mark.parametrize(
    ("make", "status"), [(confirmed, "CONFIRMED"), (rejected, "REJECTED"), (cancelled, "CANCELLED")]
)
def test_an_outcome_updates_the_status_by_version(make: Any, status: str) -> None:
    first = project_customer([], placed("o-1", 0))
    assert first is not None
    orders = project_customer(first, placed("o-2", 1))
    assert orders is not None
    before = copy.deepcopy(orders)
    updated = project_customer(orders, make(3, "o-1", 40))
    assert updated is not None
    assert [o["order_id"] for o in updated] == ["o-2", "o-1"]
    assert updated[1]["status"] == status
    assert updated[1]["version"] == 3
    assert updated[1]["updated_at"] == at(40)
    assert updated[1]["placed_at"] == at(0)
    assert updated[0] == orders[0]
    assert orders == before  # the given list is not changed in place


def test_repeats_and_stale_events_are_ignored() -> None:
    orders = project_customer([], placed())
    assert orders is not None
    assert project_customer(orders, placed(second=50)) is None  # a re-sent OrderPlaced
    done = project_customer(orders, confirmed(4))
    assert done is not None
    assert project_customer(done, confirmed(4)) is None  # a repeat
    assert project_customer(done, rejected(3)) is None  # older than what is shown
    assert project_customer(done, cancelled(4)) is None  # not newer
    cancelled_later = project_customer(done, cancelled(5))
    assert cancelled_later is not None
    assert cancelled_later[0]["status"] == "CANCELLED"


def test_an_outcome_for_an_order_not_in_the_list_changes_nothing() -> None:
    orders = project_customer([], placed("o-1"))
    assert orders is not None
    assert project_customer(orders, confirmed(4, order_id="o-unknown")) is None
    assert project_customer([], cancelled(2)) is None


def test_the_list_is_capped_and_keeps_the_newest() -> None:
    orders: list[dict[str, Any]] = []
    count = CUSTOMER_ORDERS_KEPT + 5
    for n in range(count):
        updated = project_customer(orders, placed(f"o-{n}", n))
        assert updated is not None
        orders = updated
    assert len(orders) == CUSTOMER_ORDERS_KEPT
    assert orders[0]["order_id"] == f"o-{count - 1}"
    assert orders[-1]["order_id"] == "o-5"
    assert {o["order_id"] for o in orders}.isdisjoint({f"o-{n}" for n in range(5)})


def test_a_re_sent_order_placed_keeps_its_place_in_the_customers_history() -> None:
    """A copy of OrderPlaced re-sent long after (a redelivery) carries the original time."""
    from orderflow import schemas
    from orderflow.agents.read_models import CUSTOMER_ORDERS_KEPT, project_customer

    def placed(order_id: str, placed_at: str) -> schemas.OrderPlaced:
        return schemas.OrderPlaced(
            **schemas.envelope(order_id),
            order_id=order_id,
            customer_id="c-old",
            currency="USD",
            lines=[schemas.OrderLine(sku="A", quantity=1, unit_price=1)],
            total=1,
            version=1,
            placed_at=placed_at,
        )

    orders: list = []
    for n in range(CUSTOMER_ORDERS_KEPT + 1):
        updated = project_customer(
            orders, placed(f"o{n:03d}", f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}")
        )
        assert updated is not None
        orders = updated
    assert "o000" not in [o["order_id"] for o in orders]
    again = project_customer(orders, placed("o000", "2026-01-01T00:00:00"))
    assert again is None

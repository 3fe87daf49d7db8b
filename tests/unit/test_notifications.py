"""What a customer is told about each order outcome."""

from __future__ import annotations

import pytest

from orderflow import schemas
from orderflow.domain import notifications
from orderflow.domain.notifications import notification_for

pytestmark = pytest.mark.unit


def test_a_confirmation_names_the_order_and_its_payment() -> None:
    event = schemas.OrderConfirmed(
        **schemas.envelope("o-1"), order_id="o-1", customer_id="c-1", payment_id="pay-7", version=3
    )
    notification = notification_for(event)
    assert notification is not None
    assert (notification.id, notification.kind, notification.customer_id) == (
        "o-1/order_confirmed",
        "order_confirmed",
        "c-1",
    )
    assert "pay-7" in notification.body


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("out_of_stock", "an item is out of stock"),
        ("payment_declined", "the payment was declined"),
        ("timeout", "it could not be completed in time"),
        ("gateway_timeout", "gateway timeout"),
    ],
)
def test_a_rejection_says_why_in_words(reason: str, said: str) -> None:
    event = schemas.OrderRejected(
        **schemas.envelope("o-2"),
        order_id="o-2",
        customer_id="c-1",
        reason=reason,
        detail="SKU-1: requested 2, available 0",
        version=2,
    )
    notification = notification_for(event)
    assert notification is not None
    assert notification.id == "o-2/order_rejected"
    assert said in notification.body
    assert "SKU-1: requested 2, available 0" in notification.body


def test_the_same_outcome_sent_again_is_the_same_notification() -> None:
    def cancelled() -> schemas.Message:
        return schemas.OrderCancelled(
            **schemas.envelope("o-3"), order_id="o-3", customer_id="c-1", reason="x", version=5
        )

    first, again = notification_for(cancelled()), notification_for(cancelled())
    assert first == again  # new event ids, one notification


def test_a_placed_order_calls_for_no_notification() -> None:
    event = schemas.OrderPlaced(
        **schemas.envelope("o-4"),
        order_id="o-4",
        customer_id="c-1",
        currency="EUR",
        lines=[schemas.OrderLine(sku="SKU-1", quantity=1, unit_price=100)],
        total=100,
        version=1,
    )
    assert notification_for(event) is None


def test_the_history_keeps_the_latest_entries() -> None:
    event = schemas.OrderConfirmed(
        **schemas.envelope("o-5"), order_id="o-5", customer_id="c-1", payment_id="p", version=3
    )
    notification = notification_for(event)
    assert notification is not None
    history: list[dict[str, str]] = []
    for n in range(notifications.HISTORY_LIMIT + 3):
        history = notifications.record(history, notification, "webhook", "sent", f"t{n}")
    assert len(history) == notifications.HISTORY_LIMIT
    assert history[-1]["at"] == f"t{notifications.HISTORY_LIMIT + 2}"
    assert notifications.already_recorded(history, notification)

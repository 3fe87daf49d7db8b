"""Every path parameter is checked by one rule before any handler runs: the rule the request
bodies use for the same kind of id. A value that breaks it is a 400 problem, never a 500 from
whatever the value would have reached (PostgreSQL refuses a NUL, so do the document stores)."""

from __future__ import annotations

from typing import Any

import pytest

from orderflow.domain.identifiers import id_problem
from orderflow.views import dead_letters, inventory, orders, products, sagas
from orderflow.views.parameters import path_problem
from tests.support import auth
from tests.support.views import call

ADMIN = auth.admin()
SERVICE = auth.service()

# (view, method, path as sent, captured parameters, headers)
REQUESTS: list[tuple[Any, str, str, dict[str, str], dict[str, str]]] = [
    (orders.Order, "GET", "/api/v1/orders/abc%00def", {"order_id": "abc\x00def"}, SERVICE),
    (
        orders.OrderNotifications,
        "GET",
        "/api/v1/orders/abc%00def/notifications",
        {"order_id": "abc\x00def"},
        SERVICE,
    ),
    (
        orders.CancelOrder,
        "POST",
        "/api/v1/orders/abc%00def/cancel",
        {"order_id": "abc\x00def"},
        SERVICE,
    ),
    (
        orders.CustomerOrders,
        "GET",
        "/api/v1/customers/c%00/orders",
        {"customer_id": "c\x00"},
        SERVICE,
    ),
    (products.Product, "GET", "/api/v1/products/SKU%001", {"product_id": "SKU\x001"}, {}),
    (products.Product, "DELETE", "/api/v1/products/%C2%84", {"product_id": "\x84"}, ADMIN),
    (inventory.Stock, "GET", "/api/v1/inventory/S%0A1", {"sku": "S\n1"}, SERVICE),
    (sagas.Saga, "GET", "/api/v1/sagas/" + "o" * 101, {"order_id": "o" * 101}, ADMIN),
    (
        dead_letters.DeadLetterRecords,
        "GET",
        "/api/v1/admin/dlq/a%00b",
        {"topic": "a\x00b"},
        ADMIN,
    ),
]


@pytest.mark.parametrize(("view", "method", "path", "captured", "headers"), REQUESTS)
async def test_a_bad_path_parameter_is_a_400_problem_before_any_handler(
    view: Any, method: str, path: str, captured: dict[str, str], headers: dict[str, str]
) -> None:
    answer = await call(view, method, path, captured, headers)
    assert (answer.status, answer.content_type) == (400, "application/problem+json"), answer
    [name] = captured
    assert answer.body["detail"].startswith(f"{name} is not valid: ")
    assert "\x00" not in answer.body["detail"]


async def test_credentials_are_checked_before_the_path() -> None:
    answer = await call(orders.Order, "GET", "/api/v1/orders/a%00", {"order_id": "a\x00"})
    assert answer.status == 401


def test_the_rules_by_parameter() -> None:
    assert path_problem({"order_id": "0123abcd", "customer_id": "c-1 ü"}) is None
    assert path_problem({"sku": "SKU-1", "product_id": "SKU-1", "table": "orders_view"}) is None
    assert path_problem({"key": "SKU-1/" + "0" * 32, "topic": "p.orders.commands.dlq"}) is None
    for bad in (
        {"order_id": "\u2028"},
        {"customer_id": "   "},
        {"sku": "a/b"},
        {"product_id": "é"},
        {"topic": "a b"},
        {"key": "k" * 257},
        {"anything": "x\x7f"},
    ):
        assert path_problem(bad) is not None, bad


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("c-1", True),
        (" c-1 ", True),
        ("c" * 100, True),
        ("c" * 101, False),
        ("", False),
        ("\u3000", False),
        ("a\x00b", False),
        ("a\x1fb", False),
        ("a\x7fb", False),
        ("a\x84b", False),
        ("a\u2029b", False),
        (5, False),
    ],
)
def test_an_id(value: Any, valid: bool) -> None:
    assert (id_problem(value) is None) == valid

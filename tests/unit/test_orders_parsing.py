"""parse_new_order: a valid body gives a NewOrder; an invalid one names every bad field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orderflow.domain.money import MAX_AMOUNT
from orderflow.domain.orders import (
    MAX_ID_LENGTH,
    MAX_LINES,
    MAX_QUANTITY,
    FieldError,
    InvalidOrder,
    Line,
    NewOrder,
    parse_new_order,
)
from orderflow.errors import OrderflowError


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer_id": "c-1",
        "currency": "EUR",
        "payment": {"token": "tok_visa"},
        "lines": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": 250},
            {"sku": "SKU-2", "quantity": 1, "unit_price": 1_000},
        ],
    }
    data.update(overrides)
    return data


def line(**overrides: Any) -> dict[str, Any]:
    return {"sku": "SKU-1", "quantity": 1, "unit_price": 100, **overrides}


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(InvalidOrder) as caught:
        parse_new_order(data)
    return caught.value.errors


def fields_of(data: Any) -> list[str]:
    return [error.field for error in errors_of(data)]


def test_a_valid_order_is_parsed() -> None:
    order = parse_new_order(body())
    assert order == NewOrder(
        customer_id="c-1",
        currency="EUR",
        lines=(Line("SKU-1", 2, 250), Line("SKU-2", 1, 1_000)),
        payment_token="tok_visa",
    )
    assert order.total == 1_500
    assert order.lines[0].amount == 500


def test_unknown_fields_are_ignored_and_the_input_is_not_changed() -> None:
    data = body(note="leave at the door", payment={"token": "tok", "extra": 1})
    before = copy.deepcopy(data)
    assert parse_new_order(data).payment_token == "tok"
    assert data == before


def test_the_limits_themselves_are_valid() -> None:
    order = parse_new_order(
        body(
            customer_id="c" * MAX_ID_LENGTH,
            currency="JPY",
            lines=[line(sku=f"S{i}", quantity=1, unit_price=0) for i in range(MAX_LINES - 1)]
            + [line(sku="BIG", quantity=MAX_QUANTITY, unit_price=MAX_AMOUNT // MAX_QUANTITY)],
        )
    )
    assert len(order.lines) == MAX_LINES
    assert order.total == MAX_AMOUNT


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        # the body
        ([], "$", "the body must be a JSON object"),
        ("order", "$", "the body must be a JSON object"),
        (None, "$", "the body must be a JSON object"),
        (42, "$", "the body must be a JSON object"),
        # customer_id
        ({k: v for k, v in body().items() if k != "customer_id"}, "customer_id", "required"),
        (body(customer_id=""), "customer_id", "required, a non-empty string"),
        (body(customer_id="   "), "customer_id", "required, a non-empty string"),
        (body(customer_id=7), "customer_id", "required, a non-empty string"),
        (body(customer_id="c" * (MAX_ID_LENGTH + 1)), "customer_id", "at most 100 characters"),
        (body(customer_id="c\x00"), "customer_id", "no control characters"),
        (body(customer_id="c\u2028x"), "customer_id", "no control characters"),
        # currency
        ({k: v for k, v in body().items() if k != "currency"}, "currency", "ISO 4217"),
        (body(currency="eur"), "currency", "ISO 4217"),
        (body(currency="XXX"), "currency", "ISO 4217"),
        (body(currency=978), "currency", "ISO 4217"),
        (body(currency=None), "currency", "ISO 4217"),
        # payment
        ({k: v for k, v in body().items() if k != "payment"}, "payment", "an object with a token"),
        (body(payment="tok_visa"), "payment", "an object with a token"),
        (body(payment={}), "payment.token", "required, a non-empty string"),
        (body(payment={"token": ""}), "payment.token", "required, a non-empty string"),
        (body(payment={"token": 5}), "payment.token", "required, a non-empty string"),
        (body(payment={"token": "tok\x00"}), "payment.token", "no control characters"),
        # lines
        ({k: v for k, v in body().items() if k != "lines"}, "lines", "a non-empty array"),
        (body(lines=[]), "lines", "a non-empty array"),
        (body(lines="SKU-1"), "lines", "a non-empty array"),
        (body(lines={"sku": "SKU-1"}), "lines", "a non-empty array"),
        (
            body(lines=[line(sku=f"S{i}") for i in range(MAX_LINES + 1)]),
            "lines",
            "at most 100 lines",
        ),
        (body(lines=["SKU-1"]), "lines[0]", "must be an object"),
        (body(lines=[None]), "lines[0]", "must be an object"),
        # a line's sku
        (body(lines=[{"quantity": 1, "unit_price": 1}]), "lines[0].sku", "non-empty string"),
        (body(lines=[line(sku="")]), "lines[0].sku", "non-empty string"),
        (body(lines=[line(sku=12)]), "lines[0].sku", "non-empty string"),
        (body(lines=[line(sku="S\x841")]), "lines[0].sku", "no control characters"),
        (body(lines=[line(sku="S" * 101)]), "lines[0].sku", "at most 100 characters"),
        (body(lines=[line(sku="SKU/1")]), "lines[0].sku", "must not contain '/'"),
        (body(lines=[line(), line()]), "lines[1].sku", "duplicate sku in this order"),
        # a line's quantity
        (body(lines=[line(quantity=0)]), "lines[0].quantity", "must be from 1 to 10000"),
        (body(lines=[line(quantity=-3)]), "lines[0].quantity", "must be from 1 to 10000"),
        (body(lines=[line(quantity=MAX_QUANTITY + 1)]), "lines[0].quantity", "from 1 to 10000"),
        (body(lines=[line(quantity=True)]), "lines[0].quantity", "required, an integer"),
        (body(lines=[line(quantity=False)]), "lines[0].quantity", "required, an integer"),
        (body(lines=[line(quantity=1.5)]), "lines[0].quantity", "required, an integer"),
        (body(lines=[line(quantity="2")]), "lines[0].quantity", "required, an integer"),
        (body(lines=[line(quantity=None)]), "lines[0].quantity", "required, an integer"),
        (body(lines=[{"sku": "S", "unit_price": 1}]), "lines[0].quantity", "an integer"),
        # a line's unit price
        (body(lines=[line(unit_price=-1)]), "lines[0].unit_price", f"from 0 to {MAX_AMOUNT}"),
        (body(lines=[line(unit_price=MAX_AMOUNT + 1)]), "lines[0].unit_price", "from 0 to"),
        (body(lines=[line(unit_price=9.99)]), "lines[0].unit_price", "required, an integer"),
        (body(lines=[line(unit_price=True)]), "lines[0].unit_price", "required, an integer"),
        (body(lines=[line(unit_price="100")]), "lines[0].unit_price", "required, an integer"),
        (body(lines=[{"sku": "S", "quantity": 1}]), "lines[0].unit_price", "an integer"),
        # the total
        (
            body(lines=[line(quantity=2, unit_price=MAX_AMOUNT // 2 + 1)]),
            "lines",
            f"the order total exceeds {MAX_AMOUNT}",
        ),
        (
            body(lines=[line(sku="A", unit_price=MAX_AMOUNT), line(sku="B", unit_price=1)]),
            "lines",
            f"the order total exceeds {MAX_AMOUNT}",
        ),
    ],
)
def test_each_invalid_field_is_named(data: Any, field: str, message: str) -> None:
    errors = errors_of(data)
    assert [e.field for e in errors] == [field]
    assert message in errors[0].message


def test_the_error_is_an_orderflow_error_with_a_readable_message() -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_new_order(body(currency="usd"))
    assert isinstance(caught.value, OrderflowError)
    assert str(caught.value) == "currency: required, an ISO 4217 code such as USD"


def test_all_errors_are_reported_together() -> None:
    data = {
        "customer_id": "",
        "currency": "eur",
        "payment": {"token": " "},
        "lines": [
            line(sku="A", quantity=0),
            "B",
            line(sku="C", unit_price=-5, quantity=True),
            line(sku="A"),
        ],
    }
    errors = errors_of(data)
    assert [e.field for e in errors] == [
        "customer_id",
        "currency",
        "payment.token",
        "lines[0].quantity",
        "lines[1]",
        "lines[2].quantity",
        "lines[2].unit_price",
        "lines[3].sku",
    ]
    assert errors[-1].message == "duplicate sku in this order"
    with pytest.raises(InvalidOrder) as caught:
        parse_new_order(data)
    text = str(caught.value)
    assert text.count("; ") == len(errors) - 1
    assert text.startswith("customer_id: required, a non-empty string; currency: ")


def test_missing_everything_names_every_required_field() -> None:
    assert fields_of({}) == ["customer_id", "currency", "payment", "lines"]


def test_the_total_is_checked_only_once_every_line_is_valid() -> None:
    # An invalid line makes the total meaningless: only the line is reported.
    data = body(lines=[line(sku="A", unit_price=MAX_AMOUNT, quantity=2), line(sku="B", quantity=0)])
    assert fields_of(data) == ["lines[1].quantity"]


def test_a_whole_number_written_with_a_fraction_is_an_integer() -> None:
    # JSON Schema's integer is any number without a fractional part: 2.0 is one.
    order = parse_new_order(body(lines=[line(quantity=2.0, unit_price=100.0)]))
    assert (order.lines[0].quantity, order.lines[0].unit_price) == (2, 100)
    assert type(order.lines[0].quantity) is int

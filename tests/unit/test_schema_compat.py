"""Stored v1 payloads stay readable: decoded as the topics decode them, and valid per schema.

tests/fixtures/schemas/v1 holds one payload per record type, written once by the code of the
time (``Record(...).dumps()``). A change that makes one of them unreadable, or decode to other
values, breaks consumers of messages already on the topics. A new record type needs a fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from faust.exceptions import ValueDecodeError
from faust.serializers.registry import Registry

from orderflow import schemas
from orderflow.schemas.jsonschema import json_schema
from tests.support.schema_validation import validate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "v1"

ENVELOPE = {
    "event_id": "5f0c6b0e8a7d4c1b9e2f3a4b5c6d7e8f",
    "correlation_id": "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
    "causation_id": "9e8d7c6b5a4f40312e1d0c9b8a7f6e5d",
    "occurred_at": "2024-05-01T12:34:56.789012+00:00",
    "schema_version": 1,
}
ORDER_ID = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
LINES = [("SKU-RED-MUG", 2, 1250), ("SKU-TEA-100", 1, 899)]

PRODUCT = {
    "product_id": "SKU-RED-MUG",
    "name": "Red Mug",
    "description": "A stoneware mug, glazed red, 350 ml.",
    "category": "kitchen",
    "price": 1299,
    "currency": "EUR",
    "attributes": {"colour": "red", "material": "stoneware"},
    "tags": ["mug", "gift"],
}

# The values each fixture holds besides the envelope (for lines: sku, quantity, unit_price).
EXPECTED: dict[str, dict[str, Any]] = {
    "PlaceOrder": {
        "order_id": ORDER_ID,
        "customer_id": "cust-42",
        "currency": "EUR",
        "lines": LINES,
        "payment_token": "tok_visa",
    },
    "CancelOrder": {"order_id": ORDER_ID, "reason": "customer_request"},
    "OrderPlaced": {
        "order_id": ORDER_ID,
        "customer_id": "cust-42",
        "currency": "EUR",
        "lines": LINES,
        "total": 3399,
        "version": 1,
    },
    "OrderConfirmed": {
        "order_id": ORDER_ID,
        "customer_id": "cust-42",
        "payment_id": "pay_7d2e9c",
        "version": 4,
    },
    "OrderRejected": {
        "order_id": ORDER_ID,
        "customer_id": "cust-42",
        "reason": "out_of_stock",
        "detail": "SKU-RED-MUG: requested 2, available 1",
        "version": 3,
    },
    "OrderCancelled": {
        "order_id": ORDER_ID,
        "customer_id": "cust-42",
        "reason": "customer_request",
        "version": 2,
    },
    "ReserveStock": {"order_id": ORDER_ID, "sku": "SKU-RED-MUG", "quantity": 2},
    "ReleaseStock": {"order_id": ORDER_ID, "sku": "SKU-RED-MUG"},
    "AdjustStock": {"sku": "SKU-RED-MUG", "delta": -3, "reason": "damaged in warehouse"},
    "StockLevelChanged": {"sku": "SKU-RED-MUG", "on_hand": 17, "reserved": 2, "version": 1042},
    "StockReserved": {"order_id": ORDER_ID, "sku": "SKU-RED-MUG", "quantity": 2},
    "StockRejected": {"order_id": ORDER_ID, "sku": "SKU-RED-MUG", "requested": 2, "available": 1},
    "PaymentAuthorized": {"order_id": ORDER_ID, "payment_id": "pay_7d2e9c"},
    "PaymentDeclined": {"order_id": ORDER_ID, "reason": "card_declined"},
    "PaymentUnavailable": {
        "order_id": ORDER_ID,
        "reason": "gateway circuit open",
        "retry_after": 2.5,
    },
    "DeadlineExpired": {"order_id": ORDER_ID, "deadline": 1714566911.25},
    "AuthorizePayment": {
        "order_id": ORDER_ID,
        "amount": 3399,
        "currency": "EUR",
        "token": "tok_visa",
    },
    "VoidPayment": {"order_id": ORDER_ID, "reason": "order_cancelled"},
    "UpsertProduct": PRODUCT,
    "DeleteProduct": {"product_id": "SKU-RED-MUG"},
    "ProductUpserted": {**PRODUCT, "version": 17},
    "ProductDeleted": {"product_id": "SKU-RED-MUG", "version": 42},
}

RECORDS = {record.__name__: record for record in schemas.ALL_RECORDS}


def _payload(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def _decode(payload: bytes) -> Any:
    # As the topics do (value_type=None): the record type comes from the payload's __faust.ns.
    return Registry().loads_value(None, payload)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, schemas.OrderLine):
        return (value.sku, value.quantity, value.unit_price)
    return value


def test_every_record_type_has_a_fixture_and_nothing_else_does() -> None:
    stored = {path.stem for path in FIXTURES.glob("*.json")}
    assert stored == set(RECORDS)
    assert set(EXPECTED) == set(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_the_stored_payload_decodes_to_the_same_record(name: str) -> None:
    message = _decode(_payload(name))

    assert type(message) is RECORDS[name]
    for field, expected in {**ENVELOPE, **EXPECTED[name]}.items():
        assert _plain(getattr(message, field)) == expected, field
    if "lines" in EXPECTED[name]:
        assert all(type(line) is schemas.OrderLine for line in message.lines)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_the_stored_payload_is_valid_per_the_exported_schema(name: str) -> None:
    assert validate(orjson.loads(_payload(name)), json_schema(RECORDS[name])) == []


def test_the_checker_reports_what_a_payload_lacks_or_gets_wrong() -> None:
    # Without this, a checker that accepts everything would make the test above pass.
    schema = json_schema(schemas.PlaceOrder)
    payload = orjson.loads(_payload("PlaceOrder"))
    del payload["payment_token"]
    payload["lines"][0]["quantity"] = "2"
    payload["__faust"]["ns"] = "orderflow.CancelOrder"

    assert sorted(validate(payload, schema)) == [
        "$.__faust.ns: 'orderflow.CancelOrder' is not 'orderflow.PlaceOrder'",
        "$.lines[0].quantity: '2' is not of type integer",
        "$: 'payment_token' is required",
    ]


def test_a_field_added_by_a_newer_producer_is_accepted_by_schema_and_consumers() -> None:
    # additionalProperties is true because Faust tolerates (and keeps) unknown fields.
    payload = orjson.loads(_payload("VoidPayment")) | {"schema_version": 2, "refund": True}

    assert validate(payload, json_schema(schemas.VoidPayment)) == []
    message = _decode(orjson.dumps(payload))
    assert type(message) is schemas.VoidPayment
    assert message.reason == "order_cancelled"


def test_a_payload_without_a_required_field_is_refused_by_schema_and_consumers() -> None:
    payload = orjson.loads(_payload("VoidPayment"))
    del payload["reason"]

    assert validate(payload, json_schema(schemas.VoidPayment)) == ["$: 'reason' is required"]
    with pytest.raises(ValueDecodeError, match="reason"):
        _decode(orjson.dumps(payload))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_decodes_through_the_agents_codec(name: str) -> None:
    """Agents decode raw bytes with orderflow.schemas.codec: old payloads must pass it too."""
    from orderflow.schemas.codec import decode

    record = decode((FIXTURES / f"{name}.json").read_bytes())
    assert type(record).__name__ == name
    assert record.event_id == ENVELOPE["event_id"]

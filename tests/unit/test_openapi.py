"""/openapi.json describes every route, and its schemas agree with the parsers they come from."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from orderflow.domain.catalog import InvalidProduct, parse_product, product_schema
from orderflow.domain.orders import InvalidOrder, new_order_schema, parse_new_order
from orderflow.projections import search
from orderflow.views import api_routes, dead_letters, openapi, path_schemas
from orderflow.views.problems import Problem


def document() -> dict[str, Any]:
    return openapi.describe(api_routes(), path_schemas())


def test_every_route_and_method_is_described_with_its_security() -> None:
    described = document()
    jsonschema_rs.validator_for({"type": "object"})  # the library is importable and works
    assert described["openapi"].startswith("3.1")
    for pattern, view in api_routes().items():
        path, _ = openapi.openapi_path(pattern)
        assert set(described["paths"][path]) == set(view.operations), path
        for method, operation in view.operations.items():
            described_op = described["paths"][path][method]
            responses = described_op["responses"]
            assert str(operation.status) in responses
            assert "401" in responses
            if "{" in path:
                assert "400" in responses, path
            if operation.roles is None:
                assert described_op["security"] == [{}]
            else:
                assert described_op["security"] == [{"bearer": []}]
                assert "403" in responses
            if operation.limit is not None:
                assert "429" in responses
    assert "/api/v1/orders/{order_id}" in described["paths"]
    assert "/api/v1/admin/tables/{table}/keys/{key}" in described["paths"]
    assert described["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_route_patterns_become_openapi_paths() -> None:
    assert openapi.openapi_path("/api/v1/orders/{order_id:(?!search$)[^/]+}") == (
        "/api/v1/orders/{order_id}",
        ["order_id"],
    )
    assert openapi.openapi_path("/a/{table}/keys/{key:.+}") == (
        "/a/{table}/keys/{key}",
        ["table", "key"],
    )


ORDER = {
    "customer_id": "c-1",
    "currency": "USD",
    "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": 1999}],
    "payment": {"token": "tok_visa"},
}
ORDER_VARIANTS = [
    {},
    {"currency": "XXX"},
    {"currency": 5},
    {"lines": []},
    {"lines": [{"sku": "a/b", "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": " ", "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": "0\x1f", "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": "a\r\nSet-Cookie: x", "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": "S", "quantity": 0, "unit_price": 1}]},
    {"lines": [{"sku": "S", "quantity": 10_001, "unit_price": 1}]},
    {"lines": [{"sku": "S", "quantity": 1, "unit_price": -1}]},
    {"lines": [{"sku": "S", "quantity": True, "unit_price": 1}]},
    {"lines": [{"sku": "S" * 101, "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": f"S{i}", "quantity": 1, "unit_price": 1} for i in range(101)]},
    {"lines": [{"sku": f"S{i}", "quantity": 1, "unit_price": 1} for i in range(100)]},
    {"payment": {}},
    {"payment": {"token": "t" * 101}},
    {"customer_id": "c" * 100},
    {"customer_id": ""},
    {"customer_id": "   "},
    {"customer_id": "c\x00"},
    {"customer_id": "\u00a0"},
    {"customer_id": "c\u2029"},
    {"lines": [{"sku": "S\x84", "quantity": 1, "unit_price": 1}]},
    {"lines": [{"sku": "S\u00a0", "quantity": 1, "unit_price": 1}]},
    {"payment": {"token": "t\x7f"}},
    {"lines": [{"sku": "S", "quantity": 1, "unit_price": 1}] * 2},
    {"lines": [{"sku": "S", "quantity": 2.0, "unit_price": 4.0}]},
    {"lines": [{"sku": "S", "quantity": 2.5, "unit_price": 4}]},
]


@pytest.mark.parametrize("change", ORDER_VARIANTS)
def test_the_order_schema_accepts_what_the_parser_accepts(change: dict[str, Any]) -> None:
    body = {**ORDER, **change}
    try:
        parse_new_order(body)
        accepted = True
    except InvalidOrder:
        accepted = False
    assert jsonschema_rs.validator_for(new_order_schema()).is_valid(body) == accepted, change


PRODUCT = {"name": "Mug", "category": "kitchen", "price": 1299, "currency": "USD"}
PRODUCT_VARIANTS = [
    {},
    {"name": ""},
    {"name": "x" * 201},
    {"description": "d" * 5000},
    {"description": "d" * 5001},
    {"price": -1},
    {"price": 10**12 + 1},
    {"price": 1.5},
    {"price": 1299.0},
    {"currency": "usd"},
    {"attributes": {"colour": "red"}},
    {"attributes": {"": "red"}},
    {"attributes": {"k": 1}},
    {"attributes": {f"k{i}": "v" for i in range(51)}},
    {"tags": ["mug"] * 50},
    {"tags": ["mug"] * 51},
    {"tags": [""]},
    {"colour": "red"},
    {"category": "\x1c"},
    {"category": "\x85 "},
    {"name": "\u3000"},
    {"name": "\ufeff"},
    {"tags": ["\x1f"]},
]


@pytest.mark.parametrize("change", PRODUCT_VARIANTS)
def test_the_product_schema_accepts_what_the_parser_accepts(change: dict[str, Any]) -> None:
    body = {**PRODUCT, **change}
    try:
        parse_product("SKU-1", body)
        accepted = True
    except InvalidProduct:
        accepted = False
    assert jsonschema_rs.validator_for(product_schema()).is_valid(body) == accepted, change


def test_the_order_schema_names_what_must_be_unique_among_the_lines() -> None:
    lines = new_order_schema()["properties"]["lines"]
    assert lines["uniqueItems"] is True
    assert lines["x-unique-properties"] == ["sku"]
    twice = [
        {"sku": "S", "quantity": 1, "unit_price": 1},
        {"sku": "S", "quantity": 2, "unit_price": 1},
    ]
    with pytest.raises(InvalidOrder, match="duplicate sku"):
        parse_new_order({**ORDER, "lines": twice})


@pytest.mark.parametrize("builder", [search.product_search, search.order_search])
def test_search_parameters_are_the_ones_the_search_reads(builder: Any) -> None:
    described = {p["name"]: p["schema"] for p in search.parameters(builder)}
    assert {"page", "size", "sort"} <= set(described)
    # Every parameter described is read: an invalid value of each is refused by the parser.
    for name, schema in described.items():
        bad = "x" * 300 if schema["type"] == "string" else "not-a-number"
        if schema["type"] == "boolean":
            bad = "maybe"
        if schema["type"] == "string" and "enum" not in schema and schema["maxLength"] > 300:
            bad = ",".join(["v"] * 51)
        with pytest.raises(search.InvalidSearch) as invalid:
            builder({name: bad})
        assert name in {e["field"] for e in invalid.value.errors}, name


DLQ_TIMES = [
    "2026-11-21",
    "2026-11-21T10:00",
    "2026-11-21T10:00:00Z",
    "2026-11-21T10:00:00.123456+05:30",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59",
    "2026-04-31",
    "2026-02-29",
    "2026-13-01",
    "0000-01-01",
    "2026-11-21T24:00",
    "2026-11-21t10:00z",
    "2026-11-21T10:00:00.1234567",
    "20261121",
    "٢٠٢٦-11-21",
    "",
    "yesterday",
]


@pytest.mark.parametrize("value", DLQ_TIMES)
def test_the_dead_letter_time_filters_accept_what_the_schema_accepts(value: str) -> None:
    described = {p["name"]: p["schema"] for p in dead_letters.filter_parameters()}
    try:
        dead_letters._selection({"since": value, "until": value})
        accepted = True
    except Problem:
        accepted = False
    for name in ("since", "until"):
        assert jsonschema_rs.validator_for(described[name]).is_valid(value) == accepted, value
    replay = jsonschema_rs.validator_for(dead_letters.REPLAY_SCHEMA)
    assert replay.is_valid({"since": value}) == accepted


def test_a_dead_letter_filter_given_as_null_is_refused_as_the_schema_says() -> None:
    replay = jsonschema_rs.validator_for(dead_letters.REPLAY_SCHEMA)
    for name in ("since", "until", "error_type", "key"):
        assert not replay.is_valid({name: None})
        with pytest.raises(Problem):
            dead_letters._selection({name: None})

"""Bounds every JSON body keeps, and what counts as a JSON content type."""

from __future__ import annotations

from orderflow.views.problems import (
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_JSON_STRING,
    is_json,
    json_bounds_problem,
)


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return value


def test_bodies_within_the_bounds_pass() -> None:
    assert json_bounds_problem({"lines": [{"sku": "S", "quantity": 1}] * 100}) is None
    assert json_bounds_problem(nested(MAX_JSON_DEPTH)) is None
    assert json_bounds_problem("x" * MAX_JSON_STRING) is None


def test_deep_long_or_wide_bodies_are_refused() -> None:
    assert "deeper" in (json_bounds_problem(nested(MAX_JSON_DEPTH + 2)) or "")
    assert "items" in (json_bounds_problem(list(range(MAX_JSON_ITEMS + 1))) or "")
    wide = {f"k{i}": i for i in range(MAX_JSON_ITEMS + 1)}
    assert "items" in (json_bounds_problem({"a": wide}) or "")
    assert "string" in (json_bounds_problem({"a": ["x" * (MAX_JSON_STRING + 1)]}) or "")
    assert "string" in (json_bounds_problem({"k" * (MAX_JSON_STRING + 1): 1}) or "")


def test_json_content_types() -> None:
    assert is_json("application/json")
    assert is_json("application/json; charset=utf-8")
    assert is_json("application/merge-patch+json")
    assert not is_json("")
    assert not is_json("text/plain")
    assert not is_json("application/x-www-form-urlencoded")

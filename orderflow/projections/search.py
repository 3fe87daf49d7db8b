"""Search requests as Elasticsearch queries, and answers as JSON. Pure functions.

Query parameters are parsed into a request whose every problem is reported by field, so the
view can answer 422 with all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orderflow.domain.order_document import OrderStatus

MAX_PAGE_SIZE = 100
MAX_RESULT_WINDOW = 10_000  # Elasticsearch's index.max_result_window
PRODUCT_SORTS: dict[str, list[dict[str, Any]]] = {
    "relevance": [{"_score": "desc"}, {"product_id": "asc"}],
    "price": [{"price": "asc"}, {"product_id": "asc"}],
    "-price": [{"price": "desc"}, {"product_id": "asc"}],
    "name": [{"name.sort": "asc"}, {"product_id": "asc"}],
    "-name": [{"name.sort": "desc"}, {"product_id": "asc"}],
    "newest": [{"updated_at": "desc"}, {"product_id": "asc"}],
}
ORDER_SORTS: dict[str, list[dict[str, Any]]] = {
    "newest": [{"placed_at": "desc"}, {"order_id": "asc"}],
    "oldest": [{"placed_at": "asc"}, {"order_id": "asc"}],
    "total": [{"total": "asc"}, {"order_id": "asc"}],
    "-total": [{"total": "desc"}, {"order_id": "asc"}],
}
ORDER_STATUSES = tuple(OrderStatus)
CATEGORY_FACETS = 50
MAX_VALUES = 50
MAX_VALUE_LENGTH = 100


class InvalidSearch(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass
class _Params:
    """Reads query parameters, collecting every problem."""

    query: Mapping[str, str]
    errors: list[dict[str, str]] = field(default_factory=list)

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def text(self, name: str, max_length: int = 200) -> str | None:
        value = self.query.get(name, "").strip()
        if len(value) > max_length:
            self.fail(name, f"at most {max_length} characters")
            return None
        return value or None

    def values(self, name: str, max_length: int = MAX_VALUE_LENGTH) -> list[str]:
        """A comma-separated (or repeated) parameter: at most MAX_VALUES values."""
        getall = getattr(self.query, "getall", None)
        raw = getall(name, []) if getall is not None else [self.query.get(name, "")]
        values = [part.strip() for item in raw for part in item.split(",") if part.strip()]
        if len(values) > MAX_VALUES or any(len(v) > max_length for v in values):
            self.fail(name, f"at most {MAX_VALUES} values of at most {max_length} characters")
            return []
        return values

    def integer(self, name: str, *, minimum: int = 0, default: int | None = None) -> int | None:
        raw = self.query.get(name, "").strip()
        if not raw:
            return default
        if not re.fullmatch(r"-?\d{1,18}", raw) or int(raw) < minimum:
            self.fail(name, f"an integer of at least {minimum}")
            return default
        return int(raw)

    def boolean(self, name: str) -> bool | None:
        raw = self.query.get(name, "").strip().lower()
        if not raw:
            return None
        if raw not in ("true", "false", "1", "0"):
            self.fail(name, "true or false")
            return None
        return raw in ("true", "1")

    def time(self, name: str, *, end: bool = False) -> datetime | None:
        """An ISO 8601 time; a date alone means its start (or, with ``end``, the next day's:
        ``to=2026-11-21`` includes that whole day)."""
        raw = self.query.get(name, "").strip()
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            self.fail(name, "an ISO 8601 date or time, e.g. 2026-11-21 or 2026-11-21T10:00:00Z")
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if end and "T" not in raw and " " not in raw:
            value += timedelta(days=1)
        return value

    def choice(self, name: str, choices: Mapping[str, Any], default: str) -> str:
        raw = self.query.get(name, "").strip() or default
        if raw not in choices:
            self.fail(name, f"one of {', '.join(choices)}")
            return default
        return raw

    def page(self) -> tuple[int, int]:
        page = self.integer("page", minimum=1, default=1) or 1
        size = self.integer("size", minimum=1, default=20) or 20
        if size > MAX_PAGE_SIZE:
            self.fail("size", f"at most {MAX_PAGE_SIZE}")
            size = MAX_PAGE_SIZE
        if page * size > MAX_RESULT_WINDOW:
            self.fail("page", f"page * size may be at most {MAX_RESULT_WINDOW}; narrow the search")
        return page, size

    def done(self) -> None:
        if self.errors:
            raise InvalidSearch(self.errors)


class _Described(_Params):
    """Reads nothing: records each parameter a search reads, as an OpenAPI parameter object,
    with the bounds the reading checks."""

    def __init__(self) -> None:
        super().__init__({})
        self.parameters: list[dict[str, Any]] = []

    def _add(self, name: str, schema: dict[str, Any], description: str = "") -> None:
        described = {"name": name, "in": "query", "required": False, "schema": schema}
        self.parameters.append(described | ({"description": description} if description else {}))

    def text(self, name: str, max_length: int = 200) -> str | None:
        self._add(name, {"type": "string", "maxLength": max_length})
        return None

    def values(self, name: str, max_length: int = MAX_VALUE_LENGTH) -> list[str]:
        self._add(
            name,
            {"type": "string", "maxLength": MAX_VALUES * (max_length + 1)},
            f"comma-separated, at most {MAX_VALUES} values of {max_length} characters",
        )
        return []

    def integer(self, name: str, *, minimum: int = 0, default: int | None = None) -> int | None:
        schema = {"type": "integer", "minimum": minimum, "maximum": 10**18 - 1}
        self._add(name, schema if default is None else schema | {"default": default})
        return default

    def boolean(self, name: str) -> bool | None:
        self._add(name, {"type": "boolean"})
        return None

    def time(self, name: str, *, end: bool = False) -> datetime | None:
        self._add(name, {"type": "string", "maxLength": 40}, "an ISO 8601 date or time")
        return None

    def choice(self, name: str, choices: Mapping[str, Any], default: str) -> str:
        self._add(name, {"type": "string", "enum": list(choices)})
        return default

    def page(self) -> tuple[int, int]:
        self._add("page", {"type": "integer", "minimum": 1, "default": 1})
        self._add("size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE})
        return 1, 20

    def done(self) -> None:
        return None


def parameters(search: Any) -> list[dict[str, Any]]:
    """The query parameters ``search`` (product_search or order_search) reads, described."""
    described = _Described()
    search({}, params=described)
    return described.parameters


def _range(name: str, low: Any, high: Any) -> list[dict[str, Any]]:
    bounds = {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}
    return [{"range": {name: bounds}}] if bounds else []


@dataclass(frozen=True)
class Search:
    """One search: the body for Elasticsearch's _search, and the page it asks for."""

    body: dict[str, Any]
    page: int
    size: int


def product_search(query: Mapping[str, str], *, params: _Params | None = None) -> Search:
    """GET /api/v1/products/search?q=&category=&min_price=&max_price=&in_stock=&sort=&page=&size=

    Words must all appear in the product (name, tags or description; a match in the name counts
    three times, in the tags twice). Category facets count the matches of every other filter,
    so a client can show how many products each category would give.
    """
    params = params or _Params(query)
    text = params.text("q")
    categories = params.values("category")
    low, high = params.integer("min_price"), params.integer("max_price")
    if low is not None and high is not None and low > high:
        params.fail("max_price", "at least min_price")
    in_stock = params.boolean("in_stock")
    sort = params.choice("sort", PRODUCT_SORTS, "relevance" if text else "name")
    page, size = params.page()
    params.done()
    must: list[dict[str, Any]] = []
    if text:
        must.append(
            {
                "multi_match": {
                    "query": text,
                    "type": "cross_fields",
                    "fields": ["name^3", "tags^2", "description"],
                    "operator": "and",
                }
            }
        )
    filters: list[dict[str, Any]] = [
        {"term": {"deleted": False}},
        *_range("price", low, high),
    ]
    if in_stock is not None:
        filters.append({"term": {"in_stock": in_stock}})
    body: dict[str, Any] = {
        "query": {"bool": {"must": must or [{"match_all": {}}], "filter": filters}},
        "sort": PRODUCT_SORTS[sort],
        "from": (page - 1) * size,
        "size": size,
        "track_total_hits": True,
        "version": True,
        "aggs": {"category": {"terms": {"field": "category", "size": CATEGORY_FACETS}}},
    }
    if categories:
        body["post_filter"] = {"terms": {"category": categories}}
    return Search(body, page, size)


def order_search(
    query: Mapping[str, str], *, only_customer: str | None = None, params: _Params | None = None
) -> Search:
    """GET /api/v1/orders/search?customer=&status=&sku=&min_total=&max_total=&from=&to=&sort=
    &page=&size= (``from`` inclusive, ``to`` exclusive, bound the time the order was placed;
    a time without a zone is UTC). ``only_customer`` confines it to that customer's orders
    whatever the parameters say (a customer searching)."""
    params = params or _Params(query)
    customer = params.text("customer", 100)
    statuses = [s.upper() for s in params.values("status")]
    for status in statuses:
        if status not in ORDER_STATUSES:
            params.fail("status", f"each one of {', '.join(ORDER_STATUSES)}")
    skus = params.values("sku")
    low, high = params.integer("min_total"), params.integer("max_total")
    if low is not None and high is not None and low > high:
        params.fail("max_total", "at least min_total")
    since, until = params.time("from"), params.time("to", end=True)
    if since is not None and until is not None and since >= until:
        params.fail("to", "later than from")
    sort = params.choice("sort", ORDER_SORTS, "newest")
    page, size = params.page()
    params.done()
    filters: list[dict[str, Any]] = [
        *_range("total", low, high),
    ]
    if since is not None or until is not None:
        bounds = {"gte": since.isoformat() if since else None}
        bounds["lt"] = until.isoformat() if until else None
        filters.append({"range": {"placed_at": {k: v for k, v in bounds.items() if v}}})
    if customer:
        filters.append({"term": {"customer_id": customer}})
    if only_customer is not None:
        filters.append({"term": {"customer_id": only_customer}})
    if statuses:
        filters.append({"terms": {"status": statuses}})
    if skus:
        filters.append({"terms": {"skus": skus}})
    body = {
        "query": {"bool": {"filter": filters}},
        "sort": ORDER_SORTS[sort],
        "from": (page - 1) * size,
        "size": size,
        "track_total_hits": True,
        "version": True,
    }
    return Search(body, page, size)


def hits(answer: Mapping[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    found = answer["hits"]
    documents = [{**hit["_source"], "version": hit.get("_version")} for hit in found["hits"]]
    return int(found["total"]["value"]), documents


def category_facets(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    buckets = answer.get("aggregations", {}).get("category", {}).get("buckets", [])
    return [{"value": b["key"], "count": b["doc_count"]} for b in buckets]

"""Searches over the read side: products and orders, answered by Elasticsearch."""

from __future__ import annotations

import logging
import time
from typing import Any

from elasticsearch import ApiError
from faust.web import Request, Response

from orderflow.observability.metrics import SEARCH_DURATION
from orderflow.projections import PROJECTIONS, search
from orderflow.projections.elasticsearch import ElasticsearchIndex
from orderflow.projections.stores import StoreUnavailable
from orderflow.views.access import ANY_ROLE, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response

log = logging.getLogger(__name__)


async def run_search(
    view: ApiView, projection: str, request: Request, build: Any
) -> tuple[search.Search, Any]:
    try:
        wanted: search.Search = build(request.query)
    except search.InvalidSearch as invalid:
        raise Problem(422, f"the search is invalid: {invalid}", errors=invalid.errors) from None
    except OverflowError:
        # A date alone in ``to`` means the day after it: there is none after 9999-12-31.
        errors = [{"field": "to", "message": "a date before 9999-12-31"}]
        detail = "the search is invalid: to: a date before 9999-12-31"
        raise Problem(422, detail, errors=errors) from None
    index = view.platform.read_side.store(PROJECTIONS[projection])
    assert isinstance(index, ElasticsearchIndex)
    started = time.perf_counter()
    try:
        answer = await index.search(wanted.body)
    except StoreUnavailable as error:
        log.warning("a search of %s failed: %s", projection, error)
        raise Problem(503, "search is unavailable right now; retry") from None
    except ApiError as error:
        if error.meta.status == 404:  # no index yet: nothing was ever projected
            return wanted, {"hits": {"total": {"value": 0}, "hits": []}}
        if 400 <= error.meta.status < 500:
            # A value the parameters let through that Elasticsearch cannot read (a time out of
            # its range): the client's to change. What Elasticsearch said goes to the log.
            log.warning("Elasticsearch refused a search of %s: %s", projection, error)
            raise Problem(422, "the search is invalid: a value is out of range") from None
        raise
    finally:
        SEARCH_DURATION.labels(index.alias).observe(time.perf_counter() - started)
    return wanted, answer


class ProductSearch(ApiView):
    operations = serves(
        get=Operation(
            "Full-text product search with facets",
            None,
            "public",
            query=lambda: search.parameters(search.product_search),
            errors=(422, 503),
        )
    )

    async def get(self, request: Request) -> Response:
        wanted, answer = await run_search(self, "products-search", request, search.product_search)
        total, products = search.hits(answer)
        return json_response(
            self,
            {
                "total": total,
                "page": wanted.page,
                "size": wanted.size,
                "products": products,
                "facets": {"category": search.category_facets(answer)},
            },
        )


class OrderSearch(ApiView):
    operations = serves(
        get=Operation(
            "Search orders (a customer finds its own orders only)",
            ANY_ROLE,
            "reads",
            query=lambda: search.parameters(search.order_search),
            errors=(422, 503),
        )
    )

    async def get(self, request: Request) -> Response:
        principal = self.caller(request)
        only = None if principal.for_any_customer else principal.subject

        def build(query: Any) -> search.Search:
            return search.order_search(query, only_customer=only)

        wanted, answer = await run_search(self, "orders-search", request, build)
        total, orders = search.hits(answer)
        return json_response(
            self, {"total": total, "page": wanted.page, "size": wanted.size, "orders": orders}
        )


ROUTES = {
    "/api/v1/products/search": ProductSearch,
    "/api/v1/orders/search": OrderSearch,
}

"""The projections of the platform and the stores they write to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orderflow.projections import documents
from orderflow.topics import ORDERS_DOCUMENTS, PRODUCTS_DOCUMENTS


class StoreKind(StrEnum):
    ELASTICSEARCH = "elasticsearch"
    MONGODB = "mongodb"


@dataclass(frozen=True, slots=True)
class Projection:
    name: str
    entity: str  # "orders" or "products": the alias or collection base name
    source: str  # the documents topic (without the deployment's prefix)
    store: StoreKind
    # The read model's document → what the store keeps (without the id and version).
    shape: Callable[[dict[str, Any]], dict[str, Any]]


PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        Projection(
            "orders-search",
            "orders",
            ORDERS_DOCUMENTS,
            StoreKind.ELASTICSEARCH,
            documents.order_search_document,
        ),
        Projection(
            "products-search",
            "products",
            PRODUCTS_DOCUMENTS,
            StoreKind.ELASTICSEARCH,
            documents.product_search_document,
        ),
        Projection(
            "orders-documents",
            "orders",
            ORDERS_DOCUMENTS,
            StoreKind.MONGODB,
            documents.order_document,
        ),
        Projection(
            "products-documents",
            "products",
            PRODUCTS_DOCUMENTS,
            StoreKind.MONGODB,
            documents.product_document,
        ),
    )
}


def projection(name: str) -> Projection:
    try:
        return PROJECTIONS[name]
    except KeyError:
        known = ", ".join(PROJECTIONS)
        raise KeyError(f"no projection called {name!r} (known: {known})") from None

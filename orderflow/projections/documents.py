"""What each store keeps of a read model's document. Pure functions.

The id and the version are the store's own (``_id`` and ``_version`` in Elasticsearch, ``_id``
and ``version`` in MongoDB); these shapes are the rest.
"""

from __future__ import annotations

from typing import Any


def order_document(order: dict[str, Any]) -> dict[str, Any]:
    """MongoDB keeps the whole order: lines, status, reason, full history."""
    return {k: v for k, v in order.items() if k != "version"}


def order_search_document(order: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch keeps what orders are searched and sorted by."""
    lines = order.get("lines") or []
    return {
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "status": order["status"],
        "reason": order.get("reason"),
        "skus": sorted({line["sku"] for line in lines}),
        "quantity": sum(line["quantity"] for line in lines),
        "total": order["total"],
        "currency": order["currency"],
        "placed_at": order["placed_at"],
        "updated_at": order["updated_at"],
    }


def product_document(product: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in product.items() if k != "version"}


def product_search_document(product: dict[str, Any]) -> dict[str, Any]:
    document = product_document(product)
    document["available"] = product["stock"]["available"]
    return document

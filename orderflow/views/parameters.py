"""The path parameters of the API: what each one may hold, checked once for every view.

Every value a route captures is checked here before any handler sees it (ApiView's dispatch),
by the rule of its name, and ``/openapi.json`` describes each with the same rule's schema. A
value that breaks its rule is answered 400 with what is wrong, so that no id with a control
character or of unbounded length reaches a table, a database or a log.

The rules are those the request bodies use for the same things: an order or customer id is an
id (orderflow.domain.identifiers), a sku a sku (orderflow.domain.orders.sku_problem), a product
id a catalog product id (orderflow.domain.catalog.PRODUCT_ID). A parameter without a rule of its
own is an id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orderflow.domain.catalog import PRODUCT_ID, PRODUCT_ID_SCHEMA
from orderflow.domain.identifiers import id_problem, id_schema
from orderflow.domain.orders import sku_problem

# A table key may join two ids ('sku/order id', an inventory reservation).
MAX_TABLE_KEY = 256
# Kafka's rule for a topic name.
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class PathParameter:
    problem: Callable[[str], str | None]
    schema: dict[str, Any]


def _product_id(value: str) -> str | None:
    if PRODUCT_ID.fullmatch(value):
        return None
    return "letters, digits, '.', '_', ':' or '-', starting with a letter or digit, at most 100"


def _topic(value: str) -> str | None:
    return None if TOPIC.fullmatch(value) else "a Kafka topic name: letters, digits, '.', '_', '-'"


def _sku(value: str) -> str | None:
    return sku_problem(value)


ID = PathParameter(id_problem, id_schema())
PARAMETERS: Mapping[str, PathParameter] = {
    "order_id": ID,
    "customer_id": ID,
    "table": ID,
    "sku": PathParameter(_sku, id_schema(also_forbidden="/")),
    "product_id": PathParameter(_product_id, PRODUCT_ID_SCHEMA),
    "key": PathParameter(lambda value: id_problem(value, MAX_TABLE_KEY), id_schema(MAX_TABLE_KEY)),
    "topic": PathParameter(_topic, {"type": "string", "pattern": f"^{TOPIC.pattern}$"}),
}


def parameter(name: str) -> PathParameter:
    """The rule of the path parameter called ``name``."""
    return PARAMETERS.get(name, ID)


def path_problem(match_info: Mapping[str, str]) -> str | None:
    """What is wrong with the path parameters a route captured, or None."""
    for name, value in match_info.items():
        problem = parameter(name).problem(value)
        if problem is not None:
            return f"{name} is not valid: {problem}"
    return None


def path_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every named path parameter (any other is an id)."""
    return {name: rule.schema for name, rule in PARAMETERS.items()}

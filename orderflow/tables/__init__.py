"""Every table of the platform, with typed accessors.

Each table is co-partitioned with the topic whose agent writes it (Faust writes a table's
changelog to the partition of the event being processed):

| table           | key            | value                        | written by (topic)         |
|-----------------|----------------|------------------------------|----------------------------|
| sagas           | order id       | SagaState                    | saga (orders.commands,     |
| saga_deadlines  | order id       | deadline (epoch seconds)     |   saga.replies)            |
| inventory       | sku            | StockLevel                   | inventory                  |
|                 | sku/order id   | Reservation                  |   (inventory.commands)     |
| payments        | order id       | the gateway's answer         | payments                   |
| orders_view     | order id       | order read model             | read models (orders.events)|
| customer_orders | customer id    | the customer's recent orders | read models (by customer)  |
| catalog         | product id     | CatalogEntry                 | catalog (catalog.commands) |
| products_view   | product id     | ProductView                  | product documents          |
|                 |   (= sku)      |                              |   (catalog.events,         |
|                 |                |                              |    inventory.events)       |
| notifications   | order id       | notifications sent           | notifications              |
|                 |                |                              |   (orders.events)          |
"""

from __future__ import annotations

from typing import Any

from orderflow.app import app
from orderflow.domain.catalog import CatalogEntry, ProductView
from orderflow.domain.inventory import Reservation, StockLevel
from orderflow.domain.saga import SagaState
from orderflow.tables import codecs
from orderflow.tables.typed import TypedTable


def _table(name: str, help: str) -> Any:
    # value_type=bytes makes Faust store values as they are: TypedTable encodes them.
    return app.Table(
        name,
        key_type=str,
        value_type=bytes,
        partitions=app.settings.topic_partitions,
        help=help,
        options={"driver": "rocksdict"},
    )


sagas: TypedTable[SagaState] = TypedTable(
    _table("sagas", "The state of every order's saga."), codecs.encode, codecs.decode_saga
)
saga_deadlines: TypedTable[float] = TypedTable(
    _table("saga_deadlines", "Deadlines of the sagas still waiting for a reply."),
    codecs.encode,
    codecs.decode_json,
)
# A sku's level and its reservations share one table, hence one changelog partition: the two
# records an inventory command writes reach Kafka in the order they were written, so a crash
# keeps a prefix of them (see orderflow.domain.inventory). Skus never contain '/'.
inventory: TypedTable[StockLevel | Reservation] = TypedTable(
    _table(
        "inventory",
        "Stock per sku (key: sku) and the stock held for each order line (key: 'sku/order id').",
    ),
    codecs.encode,
    codecs.decode_inventory_record,
    partition_key=lambda key: key.partition("/")[0],
)
payments: TypedTable[dict[str, Any]] = TypedTable(
    _table("payments", "The payment of each order as the gateway answered it."),
    codecs.encode,
    codecs.decode_json,
)
orders_view: TypedTable[dict[str, Any]] = TypedTable(
    _table("orders_view", "Orders as clients read them."), codecs.encode, codecs.decode_json
)
customer_orders: TypedTable[list[dict[str, Any]]] = TypedTable(
    _table("customer_orders", "The most recent orders of each customer."),
    codecs.encode,
    codecs.decode_json,
)
catalog: TypedTable[CatalogEntry] = TypedTable(
    _table("catalog", "Every product as the catalog last changed it."),
    codecs.encode,
    codecs.decode_catalog_entry,
)
products_view: TypedTable[ProductView] = TypedTable(
    _table("products_view", "Products with their stock, as the read side shows them."),
    codecs.encode,
    codecs.decode_product_view,
)

notifications: TypedTable[list[dict[str, Any]]] = TypedTable(
    _table("notifications", "The notifications sent about each order."),
    codecs.encode,
    codecs.decode_json,
)

ALL_TABLES: dict[str, TypedTable[Any]] = {
    table.name: table
    for table in (
        sagas,
        saga_deadlines,
        inventory,
        payments,
        orders_view,
        customer_orders,
        catalog,
        products_view,
        notifications,
    )
}


def reservation_key(sku: str, order_id: str) -> str:
    return f"{sku}/{order_id}"


def stock_level(sku: str) -> StockLevel | None:
    level = inventory.get(sku)
    assert level is None or isinstance(level, StockLevel), sku
    return level


def reservation(sku: str, order_id: str) -> Reservation | None:
    held = inventory.get(reservation_key(sku, order_id))
    assert held is None or isinstance(held, Reservation), (sku, order_id)
    return held

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
| catalog         | product id     | CatalogEntry                 | catalog (catalog.commands) |
| products_view   | product id     | ProductView                  | product documents          |
|                 |   (= sku)      |                              |   (catalog.events,         |
|                 |                |                              |    inventory.events)       |
| notifications   | order id       | notifications sent           | notifications              |
|                 |                |                              |   (orders.events)          |

:class:`Tables` declares them on one app; handlers are given the tables they write.
"""

from __future__ import annotations

from typing import Any

import faust

from orderflow.domain.catalog import CatalogEntry, ProductView
from orderflow.domain.inventory import Reservation, StockLevel
from orderflow.domain.order_document import VersionedOrderDocument
from orderflow.domain.payments import Payment
from orderflow.domain.saga import SagaState
from orderflow.settings import Settings
from orderflow.tables import codecs
from orderflow.tables.typed import TypedTable


def reservation_key(sku: str, order_id: str) -> str:
    return f"{sku}/{order_id}"


class Tables:
    """Every table of one deployment, declared on its app."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        def table(name: str, help: str) -> Any:
            # value_type=bytes makes Faust store values as they are: TypedTable encodes them.
            return app.Table(
                name,
                key_type=str,
                value_type=bytes,
                partitions=settings.topic_partitions,
                help=help,
                options={"driver": "rocksdict"},
            )

        self.sagas: TypedTable[SagaState] = TypedTable(
            table("sagas", "The state of every order's saga."),
            codecs.encode,
            codecs.decode_saga,
        )
        self.saga_deadlines: TypedTable[float] = TypedTable(
            table("saga_deadlines", "Deadlines of the sagas still waiting for a reply."),
            codecs.encode,
            codecs.decode_json,
        )
        # A sku's level and its reservations share one table, hence one changelog partition:
        # the two records an inventory command writes reach Kafka in the order they were
        # written, so a crash keeps a prefix of them (see orderflow.domain.inventory). Skus
        # never contain '/'.
        self.inventory: TypedTable[StockLevel | Reservation] = TypedTable(
            table(
                "inventory",
                "Stock per sku (key: sku) and the stock held for each order line "
                "(key: 'sku/order id').",
            ),
            codecs.encode,
            codecs.decode_inventory_record,
            partition_key=lambda key: key.partition("/")[0],
        )
        self.payments: TypedTable[Payment] = TypedTable(
            table("payments", "The payment of each order as the gateway answered it."),
            codecs.encode,
            codecs.decode_payment,
        )
        self.orders_view: TypedTable[VersionedOrderDocument] = TypedTable(
            table("orders_view", "Orders as clients read them."),
            codecs.encode,
            codecs.decode_json,
        )
        self.catalog: TypedTable[CatalogEntry] = TypedTable(
            table("catalog", "Every product as the catalog last changed it."),
            codecs.encode,
            codecs.decode_catalog_entry,
        )
        self.products_view: TypedTable[ProductView] = TypedTable(
            table("products_view", "Products with their stock, as the read side shows them."),
            codecs.encode,
            codecs.decode_product_view,
        )
        self.notifications: TypedTable[list[dict[str, Any]]] = TypedTable(
            table("notifications", "The notifications sent about each order."),
            codecs.encode,
            codecs.decode_json,
        )
        self.by_name: dict[str, TypedTable[Any]] = {
            typed.name: typed
            for typed in (
                self.sagas,
                self.saga_deadlines,
                self.inventory,
                self.payments,
                self.orders_view,
                self.catalog,
                self.products_view,
                self.notifications,
            )
        }

    def stock_level(self, sku: str) -> StockLevel | None:
        level = self.inventory.get(sku)
        assert level is None or isinstance(level, StockLevel), sku
        return level

    def reservation(self, sku: str, order_id: str) -> Reservation | None:
        held = self.inventory.get(reservation_key(sku, order_id))
        assert held is None or isinstance(held, Reservation), (sku, order_id)
        return held

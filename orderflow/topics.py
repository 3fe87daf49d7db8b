"""Every topic of the platform: its name, key, the records it carries, and its partitions.

All topics have ``settings.topic_partitions`` partitions, so that any two of them with the same
key are co-partitioned: an order's commands, replies and events land on the same partition
number, and so do a sku's inventory commands. Values are faust.Record types from
orderflow.schemas, written as their JSON bytes and read as raw bytes: agents decode them
(orderflow.schemas.codec) so that a message that cannot be decoded reaches orderflow's error
handling and its dead-letter topic instead of being dropped inside the framework. A topic may
carry several record types; ``__faust.ns`` names each one.

| topic               | key      | records                                              |
|---------------------|----------|------------------------------------------------------|
| orders.commands     | order id | PlaceOrder, CancelOrder                              |
| saga.replies        | order id | StockReserved, StockRejected, PaymentAuthorized,     |
|                     |          | PaymentDeclined, DeadlineExpired                     |
| inventory.commands  | sku      | ReserveStock, ReleaseStock, AdjustStock              |
| payments.commands   | order id | AuthorizePayment, VoidPayment                        |
| orders.events       | order id | OrderPlaced, OrderConfirmed, OrderRejected,          |
|                     |          | OrderCancelled                                       |
| inventory.events    | sku      | StockLevelChanged                                    |
| catalog.commands    | product  | UpsertProduct, DeleteProduct                         |
| catalog.events      | product  | ProductUpserted, ProductDeleted                      |
| orders.documents    | order id | the order document (JSON), compacted                 |
| products.documents  | product  | the product document (JSON), compacted               |

A product id is its sku, so catalog and inventory topics are co-partitioned. The documents
topics carry each read model's latest documents for the sinks (orderflow.projections); being
compacted, they keep the latest document of every key, which is what a rebuild replays.

The names are constants (without the deployment's prefix), usable without any app; the topics
themselves belong to one app: :class:`Bus` declares them on it.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson
from faust.types import TopicT

from orderflow.observability import tracing
from orderflow.schemas import Message
from orderflow.settings import Settings

ORDERS_COMMANDS = "orders.commands"
SAGA_REPLIES = "saga.replies"
INVENTORY_COMMANDS = "inventory.commands"
PAYMENTS_COMMANDS = "payments.commands"
ORDERS_EVENTS = "orders.events"
INVENTORY_EVENTS = "inventory.events"
CATALOG_COMMANDS = "catalog.commands"
CATALOG_EVENTS = "catalog.events"
ORDERS_DOCUMENTS = "orders.documents"
PRODUCTS_DOCUMENTS = "products.documents"
# Every topic above: what the agents and sinks consume (and so may dead-letter).
NAMES = (
    ORDERS_COMMANDS,
    SAGA_REPLIES,
    INVENTORY_COMMANDS,
    PAYMENTS_COMMANDS,
    ORDERS_EVENTS,
    INVENTORY_EVENTS,
    CATALOG_COMMANDS,
    CATALOG_EVENTS,
    ORDERS_DOCUMENTS,
    PRODUCTS_DOCUMENTS,
)


class Bus:
    """Every topic of one deployment, declared on its app, and how records are sent to them.

    Handlers hold the bus and name a topic when they send, so a test can put an in-memory
    channel in a topic's place.
    """

    def __init__(self, app: faust.App, settings: Settings) -> None:
        def topic(*names: str, compacting: bool | None = None) -> TopicT:
            # internal=True: the app owns these topics and creates them at start, with the
            # configured partitions and replication factor (brokers must not auto-create them).
            return app.topic(
                *(settings.topic(name) for name in names),
                key_type=str,
                value_type=bytes,
                value_serializer="raw",
                partitions=settings.topic_partitions,
                replicas=settings.topic_replication_factor,
                internal=True,
                compacting=compacting,
            )

        self.orders_commands = topic(ORDERS_COMMANDS)
        self.saga_replies = topic(SAGA_REPLIES)
        self.inventory_commands = topic(INVENTORY_COMMANDS)
        self.payments_commands = topic(PAYMENTS_COMMANDS)
        self.orders_events = topic(ORDERS_EVENTS)
        self.inventory_events = topic(INVENTORY_EVENTS)
        self.catalog_commands = topic(CATALOG_COMMANDS)
        self.catalog_events = topic(CATALOG_EVENTS)
        self.orders_documents = topic(ORDERS_DOCUMENTS, compacting=True)
        self.products_documents = topic(PRODUCTS_DOCUMENTS, compacting=True)
        # What the saga agent consumes: both topics are keyed by order id and co-partitioned.
        self.saga_inbox = topic(ORDERS_COMMANDS, SAGA_REPLIES)
        # What the product read model consumes: both keyed by product id (sku).
        self.product_sources = topic(CATALOG_EVENTS, INVENTORY_EVENTS)

    def all(self) -> tuple[TopicT, ...]:
        """Each topic once (the agents' multi-topic sources are made of these)."""
        return (
            self.orders_commands,
            self.saga_replies,
            self.inventory_commands,
            self.payments_commands,
            self.orders_events,
            self.inventory_events,
            self.catalog_commands,
            self.catalog_events,
            self.orders_documents,
            self.products_documents,
        )

    async def declare(self) -> None:
        """Create every topic, also those that no agent of this app consumes."""
        for topic in self.all():
            await topic.maybe_declare()


def register(app: faust.App, bus: Bus) -> None:
    """Declare the topics when the worker starts."""
    app.task(bus.declare)


async def publish(topic: Any, key: str, record: Message) -> None:
    """Send ``record`` (as its JSON bytes) keyed by ``key``; Faust flushes before committing."""
    await topic.send(key=key, value=record.dumps(), headers=tracing.inject_bytes() or None)


async def publish_document(topic: Any, key: str, document: dict[str, Any]) -> None:
    """Send a read model's document (JSON) to one of the documents topics."""
    await topic.send(key=key, value=orjson.dumps(document), headers=tracing.inject_bytes() or None)

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
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.types import TopicT

from orderflow.app import app
from orderflow.observability import tracing
from orderflow.schemas import Message

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


def _topic(*names: str, compacting: bool | None = None) -> TopicT:
    # internal=True: the app owns these topics and creates them at start, with the configured
    # partitions and replication factor (brokers must not auto-create them with defaults).
    return app.topic(
        *(app.settings.topic(name) for name in names),
        key_type=str,
        value_type=bytes,
        value_serializer="raw",
        partitions=app.settings.topic_partitions,
        replicas=app.settings.topic_replication_factor,
        internal=True,
        compacting=compacting,
    )


orders_commands = _topic(ORDERS_COMMANDS)
saga_replies = _topic(SAGA_REPLIES)
inventory_commands = _topic(INVENTORY_COMMANDS)
payments_commands = _topic(PAYMENTS_COMMANDS)
orders_events = _topic(ORDERS_EVENTS)
inventory_events = _topic(INVENTORY_EVENTS)
catalog_commands = _topic(CATALOG_COMMANDS)
catalog_events = _topic(CATALOG_EVENTS)
orders_documents = _topic(ORDERS_DOCUMENTS, compacting=True)
products_documents = _topic(PRODUCTS_DOCUMENTS, compacting=True)

# What the saga agent consumes: both topics are keyed by order id and co-partitioned.
saga_inbox = _topic(ORDERS_COMMANDS, SAGA_REPLIES)
# What the product read model consumes: both keyed by product id (sku).
product_sources = _topic(CATALOG_EVENTS, INVENTORY_EVENTS)

ALL_TOPICS = (
    orders_commands,
    saga_replies,
    inventory_commands,
    payments_commands,
    orders_events,
    inventory_events,
    catalog_commands,
    catalog_events,
    orders_documents,
    products_documents,
)


@app.task  # type: ignore[untyped-decorator]
async def declare_topics() -> None:
    """Create every topic at start, also those that no agent of this app consumes."""
    for topic in ALL_TOPICS:
        await topic.maybe_declare()


async def publish(topic: Any, key: str, record: Message) -> None:
    """Send ``record`` (as its JSON bytes) keyed by ``key``; Faust flushes before committing."""
    await topic.send(key=key, value=record.dumps(), headers=tracing.inject_bytes() or None)


async def publish_document(topic: Any, key: str, document: dict[str, Any]) -> None:
    """Send a read model's document (JSON) to one of the documents topics."""
    await topic.send(key=key, value=orjson.dumps(document), headers=tracing.inject_bytes() or None)

"""Commands to the product catalog (topic catalog.commands) and its events (catalog.events).

Both topics are keyed by product id, which is also the sku that the inventory keys stock by,
so a product's catalog events and its stock events are co-partitioned.
"""

from __future__ import annotations

from faust.models.fields import StringField

from orderflow.schemas.envelope import Message

# A product's description is optional: the empty text stands for none (the other text fields
# are required, and a record refuses them blank).
OPTIONAL_TEXT = StringField(allow_blank=True)


class UpsertProduct(Message, namespace="orderflow.UpsertProduct"):
    product_id: str
    name: str
    description: str = OPTIONAL_TEXT
    category: str
    price: int  # minor units of ``currency``
    currency: str
    attributes: dict[str, str]
    tags: list[str]


class DeleteProduct(Message, namespace="orderflow.DeleteProduct"):
    product_id: str


class ProductUpserted(Message, namespace="orderflow.ProductUpserted"):
    product_id: str
    name: str
    description: str = OPTIONAL_TEXT
    category: str
    price: int
    currency: str
    attributes: dict[str, str]
    tags: list[str]
    version: int  # the offset of the catalog command that made this version


class ProductDeleted(Message, namespace="orderflow.ProductDeleted"):
    product_id: str
    version: int

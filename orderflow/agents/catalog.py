"""The product catalog, and the product read model that joins it with stock levels.

catalog.commands (keyed by product id) → the ``catalog`` table → catalog.events.
catalog.events + inventory.events (both keyed by product id = sku) → ``products_view`` →
products.documents, which the sinks project into Elasticsearch and MongoDB. How versions keep
redeliveries harmless is in orderflow.domain.catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.domain import catalog
from orderflow.domain.catalog import Freshness, ProductView
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish, publish_document

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp


def product_fields(record: schemas.UpsertProduct | schemas.ProductUpserted) -> dict[str, Any]:
    return {name: getattr(record, name) for name in catalog.PRODUCT_FIELDS}


class CatalogKeeper:
    """catalog.commands → the ``catalog`` table → catalog.events."""

    def __init__(self, entries: TypedTable[catalog.CatalogEntry], bus: Bus) -> None:
        self.entries = entries
        self.bus = bus

    async def __call__(self, command: schemas.Message, event: EventT[Any]) -> None:
        match command:
            case schemas.UpsertProduct(product_id=product_id):
                product: dict[str, Any] | None = product_fields(command)
            case schemas.DeleteProduct(product_id=product_id):
                product = None
            case _:
                raise SchemaError(f"{type(command).__name__} is not a catalog command")
        entry, state = catalog.change_product(
            self.entries.get(product_id), product, event.message.offset
        )
        if state is Freshness.STALE or entry is None:
            return
        if state is Freshness.NEW:
            self.entries[product_id] = entry
        # The same id for a re-sent copy: consumers see it is the same event.
        envelope = schemas.caused_by(command, schemas.output_id(product_id, f"v{entry.version}"))
        changed: schemas.Message
        if entry.product is None:
            changed = schemas.ProductDeleted(
                **envelope, product_id=product_id, version=entry.version
            )
        else:
            changed = schemas.ProductUpserted(
                **envelope, product_id=product_id, version=entry.version, **entry.product
            )
        await publish(self.bus.catalog_events, product_id, changed)


class ProductDocuments:
    """catalog.events + inventory.events → ``products_view`` → products.documents."""

    def __init__(self, views: TypedTable[ProductView], bus: Bus) -> None:
        self.views = views
        self.bus = bus

    async def __call__(self, message: schemas.Message, _: EventT[Any]) -> None:
        match message:
            case schemas.ProductUpserted(product_id=product_id, version=version):
                view = self.views.get(product_id) or ProductView(product_id)
                view, state = catalog.apply_catalog(
                    view, product_fields(message), version, message.occurred_at
                )
            case schemas.ProductDeleted(product_id=product_id, version=version):
                view = self.views.get(product_id) or ProductView(product_id)
                view, state = catalog.apply_catalog(view, None, version, message.occurred_at)
            case schemas.StockLevelChanged(sku=product_id, version=version):
                view = self.views.get(product_id) or ProductView(product_id)
                view, state = catalog.apply_stock(
                    view, message.on_hand, message.reserved, version, message.occurred_at
                )
            case _:
                raise SchemaError(f"{type(message).__name__} is not a catalog or stock event")
        if state is Freshness.STALE:
            return
        if state is Freshness.NEW:
            self.views[product_id] = view
        if view.listed:
            await publish_document(self.bus.products_documents, product_id, view.document())


def register(app: OrderflowApp) -> None:
    keeper = CatalogKeeper(app.data.catalog, app.bus)
    documents = ProductDocuments(app.data.products_view, app.bus)

    @app.agent(app.bus.catalog_commands, name=f"{__name__}.catalog_keeper")
    async def catalog_keeper(stream: StreamT[bytes]) -> None:
        await process(app, stream, keeper, "catalog")

    @app.agent(app.bus.product_sources, name=f"{__name__}.product_documents")
    async def product_documents(stream: StreamT[bytes]) -> None:
        await process(app, stream, documents, "product-documents")

"""The sink agents: one per projection (orderflow.projections), each on its documents topic.

Two projections read each documents topic (one per store), as separate agents: a slow
MongoDB holds back only the MongoDB sink's own acknowledgements, and a message's offset is
committed once both have written it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.types import StreamT, TopicT

from orderflow.projections import PROJECTIONS
from orderflow.projections.sink import Sink

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp


def register(app: OrderflowApp) -> None:
    """One sink agent per projection, on its documents topic."""
    bus = app.bus
    _sink(app, "orders-search", bus.orders_documents)
    _sink(app, "orders-documents", bus.orders_documents)
    _sink(app, "products-search", bus.products_documents)
    _sink(app, "products-documents", bus.products_documents)


def _sink(app: OrderflowApp, name: str, topic: TopicT) -> None:
    projection = PROJECTIONS[name]

    async def project(stream: StreamT[bytes]) -> None:
        await Sink(app, projection, app.read_side.store(projection)).run(stream)

    project.__name__ = project.__qualname__ = name.replace("-", "_")
    app.agent(topic, name=f"orderflow.sinks.{name}")(project)

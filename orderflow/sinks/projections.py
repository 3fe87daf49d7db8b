"""The sink agents: one per projection (orderflow.projections), each on its documents topic.

Two projections read each documents topic (one per store), as separate agents: a slow
MongoDB holds back only the MongoDB sink's own acknowledgements, and a message's offset is
committed once both have written it.
"""

from __future__ import annotations

from typing import Any

from faust.types import StreamT

from orderflow import topics
from orderflow.app import app
from orderflow.projections import PROJECTIONS
from orderflow.projections.sink import Sink


def _sink(name: str, topic: Any) -> None:
    projection = PROJECTIONS[name]

    async def project(stream: StreamT[bytes]) -> None:
        await Sink(app, projection, app.read_side.store(projection)).run(stream)

    project.__name__ = project.__qualname__ = name.replace("-", "_")
    app.agent(topic, name=f"orderflow.sinks.{name}")(project)


_sink("orders-search", topics.orders_documents)
_sink("orders-documents", topics.orders_documents)
_sink("products-search", topics.products_documents)
_sink("products-documents", topics.products_documents)

"""The clients of the read-side stores, made on first use from the settings."""

from __future__ import annotations

import asyncio
from typing import Any

from elasticsearch import AsyncElasticsearch
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.uri_parser import parse_uri

from orderflow.projections.elasticsearch import ElasticsearchIndex, alias_name
from orderflow.projections.mongodb import MongoCollection
from orderflow.projections.registry import Projection, StoreKind
from orderflow.projections.stores import Store
from orderflow.settings import Settings

REQUEST_TIMEOUT = 10.0  # seconds for one call to a store


class ReadSide:
    """Elasticsearch and MongoDB clients, and one Store per projection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._elasticsearch: AsyncElasticsearch | None = None
        self._mongodb: Any = None
        self._stores: dict[str, Store] = {}
        self._mongodb_writes = asyncio.Lock()  # one write command at a time (see mongodb.py)

    @property
    def elasticsearch(self) -> AsyncElasticsearch:
        if self._elasticsearch is None:
            self._elasticsearch = AsyncElasticsearch(
                self.settings.elasticsearch_url, request_timeout=REQUEST_TIMEOUT
            )
        return self._elasticsearch

    @property
    def mongodb(self) -> Any:
        """The database named in the MongoDB URL (``orderflow`` when it names none)."""
        if self._mongodb is None:
            url = self.settings.mongodb_url
            client: Any = AsyncIOMotorClient(
                url,
                serverSelectionTimeoutMS=int(REQUEST_TIMEOUT * 1000),
                socketTimeoutMS=int(REQUEST_TIMEOUT * 1000),
            )
            self._mongodb = client[parse_uri(url).get("database") or "orderflow"]
        return self._mongodb

    def store(self, projection: Projection) -> Store:
        if projection.name not in self._stores:
            prefix = self.settings.app_id
            store: Store
            if projection.store is StoreKind.ELASTICSEARCH:
                alias = alias_name(prefix, projection.entity)
                store = ElasticsearchIndex(self.elasticsearch, alias, projection.entity)
            else:
                store = MongoCollection(
                    self.mongodb, prefix, projection.entity, self._mongodb_writes
                )
            self._stores[projection.name] = store
        return self._stores[projection.name]

    async def close(self) -> None:
        if self._elasticsearch is not None:
            await self._elasticsearch.close()
            self._elasticsearch = None
        if self._mongodb is not None:
            self._mongodb.client.close()
            self._mongodb = None
        self._stores.clear()

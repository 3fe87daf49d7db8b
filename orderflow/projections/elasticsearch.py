"""Elasticsearch indices of the read side: mappings, analysis, versioned bulk writes, aliases.

Readers and the sinks use an alias (``<app>-orders``, ``<app>-products``) that points at one
generation (``<alias>-000001``, ...). A rebuild fills the next generation and moves the alias
in one atomic ``_aliases`` call. Writes use external versioning: Elasticsearch itself refuses
a version that is not above the stored one (409), which the sink counts as already applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError

from orderflow.projections.stores import Document, Rejection, StoreUnavailable

# Product text: possessives dropped, lower-cased, accents folded, stop words removed, English
# stemming (so "mugs" finds "mug" and "cafe" finds "Café"). The local integ-test distribution
# gets these filters from deploy/local/elasticsearch-analysis; a full distribution has them.
PRODUCT_ANALYSIS: dict[str, Any] = {
    "analyzer": {
        "product_text": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "english_possessive",
                "lowercase",
                "asciifolding",
                "english_stop",
                "english_stemmer",
            ],
        }
    },
    "normalizer": {"folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}},
    "filter": {
        "english_possessive": {"type": "stemmer", "language": "possessive_english"},
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_stemmer": {"type": "stemmer", "language": "english"},
    },
}

_TEXT = {"type": "text", "analyzer": "product_text"}

INDICES: dict[str, dict[str, Any]] = {
    "products": {
        "settings": {"analysis": PRODUCT_ANALYSIS},
        "mappings": {
            "dynamic": False,
            "properties": {
                "product_id": {"type": "keyword"},
                "name": {**_TEXT, "fields": {"sort": {"type": "keyword", "normalizer": "folded"}}},
                "description": _TEXT,
                "category": {"type": "keyword"},
                "tags": {**_TEXT, "fields": {"keyword": {"type": "keyword"}}},
                "price": {"type": "long"},
                "currency": {"type": "keyword"},
                "attributes": {"type": "object", "enabled": False},
                "stock": {"type": "object", "enabled": False},
                "available": {"type": "long"},
                "in_stock": {"type": "boolean"},
                "deleted": {"type": "boolean"},
                "updated_at": {"type": "date"},
            },
        },
    },
    "orders": {
        "settings": {},
        "mappings": {
            "dynamic": False,
            "properties": {
                "order_id": {"type": "keyword"},
                "customer_id": {"type": "keyword"},
                "status": {"type": "keyword"},
                "reason": {"type": "keyword"},
                "skus": {"type": "keyword"},
                "quantity": {"type": "long"},
                "total": {"type": "long"},
                "currency": {"type": "keyword"},
                "placed_at": {"type": "date"},
                "updated_at": {"type": "date"},
            },
        },
    },
}


def alias_name(app_id: str, entity: str) -> str:
    return f"{app_id.lower()}-{entity}"


def _generation(index: str) -> int:
    match = re.search(r"-(\d{6})$", index)
    return int(match.group(1)) if match else 0


async def guarded(call: Any) -> Any:
    """Await ``call``, turning an unreachable or overloaded cluster into StoreUnavailable."""
    try:
        return await call
    except (TransportConnectionError, ConnectionTimeout) as error:
        raise StoreUnavailable(f"Elasticsearch is unreachable: {error}") from error
    except ApiError as error:
        if error.meta.status == 429 or error.meta.status >= 500:
            raise StoreUnavailable(f"Elasticsearch refused for now: {error}") from error
        raise


class ElasticsearchIndex:
    """One entity's index generations behind its alias."""

    def __init__(self, client: AsyncElasticsearch, alias: str, entity: str) -> None:
        self.client = client
        self.alias = alias
        self.definition = INDICES[entity]

    async def prepare(self) -> None:
        if await guarded(self.client.indices.exists_alias(name=self.alias)):
            return
        await self._create(f"{self.alias}-000001", with_alias=True)

    async def _create(self, index: str, *, with_alias: bool) -> None:
        settings = {"number_of_shards": 1, "number_of_replicas": 0, **self.definition["settings"]}
        aliases = {self.alias: {"is_write_index": True}} if with_alias else None
        try:
            await guarded(
                self.client.indices.create(
                    index=index,
                    settings=settings,
                    mappings=self.definition["mappings"],
                    aliases=aliases,
                )
            )
        except ApiError as error:  # another worker created it first
            if error.meta.status != 400 or "already_exists" not in str(error):
                raise

    async def write(
        self, documents: Sequence[Document], target: str | None = None
    ) -> list[Rejection]:
        index = target or self.alias
        operations: list[dict[str, Any]] = []
        for document in documents:
            operations.append(
                {
                    "index": {
                        "_index": index,
                        "_id": document.id,
                        "version": document.version,
                        "version_type": "external",
                    }
                }
            )
            operations.append(document.body)
        answer = await guarded(self.client.bulk(operations=operations))
        if not answer["errors"]:
            return []
        rejected, retry = [], []
        for item in answer["items"]:
            result = item["index"]
            status = result["status"]
            if status < 300 or status == 409:  # written, or a newer version is already there
                continue
            reason = result.get("error", {}).get("reason") or str(result.get("error"))
            if status == 429 or status >= 500:
                retry.append(f"{result['_id']}: {reason}")
            else:
                rejected.append(Rejection(result["_id"], f"Elasticsearch {status}: {reason}"))
        if retry:
            raise StoreUnavailable(f"Elasticsearch could not take {len(retry)}: {retry[0]}")
        return rejected

    async def count(self, target: str | None = None) -> int:
        answer = await guarded(self.client.count(index=target or self.alias))
        return int(answer["count"])

    async def versions(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        try:
            answer = await guarded(
                self.client.mget(index=self.alias, ids=list(ids), source=False, realtime=True)
            )
        except NotFoundError:
            return {}  # no index yet: nothing was ever projected
        return {doc["_id"]: int(doc["_version"]) for doc in answer["docs"] if doc.get("found")}

    async def get(self, id: str) -> dict[str, Any] | None:
        try:
            found = await guarded(self.client.get(index=self.alias, id=id))
        except NotFoundError:
            return None
        return {**found["_source"], "version": found["_version"]}

    async def live(self) -> str:
        answer = await guarded(self.client.indices.get_alias(name=self.alias))
        return str(next(iter(answer.body)))

    async def new_generation(self) -> str:
        existing = await guarded(
            self.client.indices.get(index=f"{self.alias}-*", expand_wildcards="all")
        )
        generation = max((_generation(name) for name in existing.body), default=0) + 1
        index = f"{self.alias}-{generation:06d}"
        await self._create(index, with_alias=False)
        return index

    async def switch(self, target: str) -> str:
        previous = await self.live()
        await guarded(
            self.client.indices.update_aliases(
                actions=[
                    {"remove": {"index": previous, "alias": self.alias}},
                    {"add": {"index": target, "alias": self.alias, "is_write_index": True}},
                ]
            )
        )
        return previous

    async def drop(self, target: str) -> None:
        await guarded(self.client.options(ignore_status=404).indices.delete(index=target))

    async def search(self, body: dict[str, Any]) -> Any:
        return await guarded(self.client.search(index=self.alias, **body))

    async def refresh(self) -> None:
        await guarded(self.client.indices.refresh(index=self.alias))

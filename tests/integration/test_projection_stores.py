"""The read-side stores against the real Elasticsearch and MongoDB-wire servers.

One contract, run against both stores: versioned writes never go back to an older version,
a rebuild generation becomes live in one switch, and counts and reads agree. Then product
search relevance on the real analyzer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orderflow.projections import PROJECTIONS, search
from orderflow.projections.elasticsearch import ElasticsearchIndex
from orderflow.projections.read_side import ReadSide
from orderflow.projections.stores import Document, Store
from orderflow.settings import Settings


@pytest.fixture
async def read_side(
    elasticsearch: str, mongodb: str, run_id: str, request: pytest.FixtureRequest
) -> AsyncIterator[ReadSide]:
    app_id = f"{run_id}-{request.node.name[:40]}".lower().replace("[", "-").replace("]", "")
    settings = dataclasses.replace(
        Settings(), app_id=app_id, elasticsearch_url=elasticsearch, mongodb_url=mongodb
    )
    side = ReadSide(settings)
    yield side
    client = side.elasticsearch
    await client.options(ignore_status=404).indices.delete(index=f"{app_id}-*")
    for name in await side.mongodb.list_collection_names():
        if name.startswith(f"{app_id}."):
            await side.mongodb.drop_collection(name)
    await side.close()


def order(order_id: str, status: str, version: int, total: int = 1000) -> Document:
    body = {
        "order_id": order_id,
        "customer_id": "c-1",
        "status": status,
        "reason": None,
        "detail": None,
        "payment_id": None,
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": total // 2}],
        "total": total,
        "currency": "EUR",
        "placed_at": "2026-11-21T10:00:00+00:00",
        "updated_at": "2026-11-21T10:00:01+00:00",
        "history": [{"status": status, "at": "2026-11-21T10:00:01+00:00"}],
    }
    return Document(order_id, version, body)


def shaped(store_name: str, document: Document) -> Document:
    return dataclasses.replace(document, body=PROJECTIONS[store_name].shape(document.body))


async def stored(store: Store, key: str) -> dict[str, Any] | None:
    if isinstance(store, ElasticsearchIndex):
        await store.refresh()
    return await store.get(key)


@pytest.mark.parametrize("name", ["orders-search", "orders-documents"])
async def test_an_older_or_equal_version_never_replaces_a_newer_one(
    read_side: ReadSide, name: str
) -> None:
    store = read_side.store(PROJECTIONS[name])
    await store.prepare()
    await store.prepare()  # idempotent: a second worker prepares too
    newer = shaped(name, order("o-1", "CONFIRMED", 3))
    assert await store.write([newer, shaped(name, order("o-2", "PENDING", 1))]) == []
    # A replay: older and equal versions, some documents new to the store.
    replay = [
        shaped(name, order("o-1", "PENDING", 1)),
        shaped(name, order("o-1", "REJECTED", 3)),
        shaped(name, order("o-2", "CANCELLED", 2)),
        shaped(name, order("o-3", "PENDING", 1)),
    ]
    assert await store.write(replay) == []
    first, second, third = [await stored(store, key) for key in ("o-1", "o-2", "o-3")]
    assert first is not None
    assert (first["status"], first["version"]) == ("CONFIRMED", 3)
    assert second is not None
    assert (second["status"], second["version"]) == ("CANCELLED", 2)
    assert third is not None
    assert third["version"] == 1
    assert await store.count() == 3


@pytest.mark.parametrize("name", ["orders-search", "orders-documents"])
async def test_a_new_generation_goes_live_in_one_switch(read_side: ReadSide, name: str) -> None:
    store = read_side.store(PROJECTIONS[name])
    await store.prepare()
    await store.write([shaped(name, order("o-1", "PENDING", 1))])
    first = await store.live()
    target = await store.new_generation()
    assert target != first
    await store.write([shaped(name, order("o-1", "CONFIRMED", 2))], target)
    await store.write([shaped(name, order("o-1", "PENDING", 1))], target)  # a late, older copy
    assert (await stored(store, "o-1") or {})["version"] == 1  # readers still see the old one
    assert await store.switch(target) == first
    if isinstance(store, ElasticsearchIndex):
        await store.refresh()
    else:
        await store.live(refresh=True)
    assert await store.live() == target
    now = await stored(store, "o-1")
    assert now is not None
    assert (now["status"], now["version"]) == ("CONFIRMED", 2)
    await store.drop(first)
    assert await store.count() == 1


async def test_a_document_elasticsearch_refuses_is_reported_not_retried(
    read_side: ReadSide,
) -> None:
    store = read_side.store(PROJECTIONS["orders-search"])
    await store.prepare()
    bad = shaped("orders-search", order("o-bad", "PENDING", 1))
    bad.body["total"] = "not a number"
    good = shaped("orders-search", order("o-good", "PENDING", 1))
    rejections = await store.write([bad, good])
    assert [r.id for r in rejections] == ["o-bad"]
    assert "400" in rejections[0].reason
    assert await stored(store, "o-good") is not None


PRODUCTS = {
    "mug": ("Red Mug", "A stoneware mug, glazed red.", "kitchen", 1299, ["mug"], 5),
    "mugs-set": ("Espresso Cups", "A set of four mugs for espresso.", "kitchen", 2499, [], 0),
    "cafe": ("Café Crème Beans", "Whole coffee beans, medium roast.", "pantry", 1599, [], 9),
    "kettle": ("Blue Kettle", "Boils water for tea; pairs with any mug.", "kitchen", 3999, [], 2),
    "teapot": ("Teapot", "A teapot for loose tea.", "kitchen", 2999, ["tea"], 1),
    "runner": ("Running Shoes", "Light shoes for running.", "sport", 8999, [], 3),
    "gone": ("Red Mug Deluxe", "Discontinued mug.", "kitchen", 1999, [], 1),
}


def product(product_id: str, version: int = 1, deleted: bool = False) -> Document:
    name, description, category, price, tags, available = PRODUCTS[product_id]
    body = {
        "product_id": product_id,
        "name": name,
        "description": description,
        "category": category,
        "price": price,
        "currency": "EUR",
        "attributes": {},
        "tags": tags,
        "stock": {"on_hand": available, "reserved": 0, "available": available},
        "in_stock": available > 0,
        "deleted": deleted,
        "updated_at": "2026-11-21T10:00:00+00:00",
    }
    return Document(product_id, version, PROJECTIONS["products-search"].shape(body))


@pytest.fixture
async def catalog(read_side: ReadSide) -> ElasticsearchIndex:
    index = read_side.store(PROJECTIONS["products-search"])
    assert isinstance(index, ElasticsearchIndex)
    await index.prepare()
    documents = [product(p) for p in PRODUCTS if p != "gone"]
    assert await index.write([*documents, product("gone", 2, deleted=True)]) == []
    await index.refresh()
    return index


async def find(index: ElasticsearchIndex, **query: str) -> tuple[list[str], Any]:
    answer = await index.search(search.product_search(query).body)
    _, found = search.hits(answer)
    return [p["product_id"] for p in found], answer


async def test_singular_and_plural_find_each_other(catalog: ElasticsearchIndex) -> None:
    singular, _ = await find(catalog, q="mug")
    plural, _ = await find(catalog, q="mugs")
    assert set(singular) == set(plural) == {"mug", "mugs-set", "kettle"}


async def test_accents_and_case_are_folded(catalog: ElasticsearchIndex) -> None:
    assert (await find(catalog, q="CAFE creme"))[0] == ["cafe"]
    assert (await find(catalog, q="café"))[0] == ["cafe"]


async def test_a_word_in_the_name_outranks_it_in_the_description(
    catalog: ElasticsearchIndex,
) -> None:
    ranked, _ = await find(catalog, q="mug")
    assert ranked[0] == "mug"  # name (and tag) ahead of two descriptions
    ranked, _ = await find(catalog, q="teapot")
    assert ranked == ["teapot"]
    ranked, _ = await find(catalog, q="tea")
    assert ranked[0] == "teapot"  # its tag; the kettle has it in its description only
    assert set(ranked) == {"teapot", "kettle"}


async def test_filters_sorting_pagination_and_facets(catalog: ElasticsearchIndex) -> None:
    everything, answer = await find(catalog, sort="price")
    assert everything == ["mug", "cafe", "mugs-set", "teapot", "kettle", "runner"]
    assert search.category_facets(answer) == [
        {"value": "kitchen", "count": 4},
        {"value": "pantry", "count": 1},
        {"value": "sport", "count": 1},
    ]
    kitchen, answer = await find(catalog, category="kitchen", sort="-price")
    assert kitchen == ["kettle", "teapot", "mugs-set", "mug"]
    assert len(search.category_facets(answer)) == 3  # facets ignore the category filter
    in_stock, _ = await find(catalog, q="mug", in_stock="true")
    assert set(in_stock) == {"mug", "kettle"}
    cheap, _ = await find(catalog, min_price="1300", max_price="3000", sort="price")
    assert cheap == ["cafe", "mugs-set", "teapot"]
    page_two, answer = await find(catalog, sort="name", page="2", size="2")
    assert page_two == ["mugs-set", "mug"]  # Espresso Cups, Red Mug
    assert answer["hits"]["total"]["value"] == 6


async def test_a_document_mongodb_refuses_goes_alone_and_its_batch_mates_are_written(
    read_side: ReadSide,
) -> None:
    name = "products-documents"
    store = read_side.store(PROJECTIONS[name])
    await store.prepare()
    assert await store.write([shaped(name, order("o-0", "CONFIRMED", 5))]) == []
    refused = shaped(name, order("o-bad", "PENDING", 1))
    refused.body["attributes"] = {"$": "x"}  # no MongoDB-wire store takes a key like this
    batch = [
        shaped(name, order("o-0", "PENDING", 1)),  # stale: the store has version 5
        shaped(name, order("o-1", "PENDING", 1)),
        refused,
        shaped(name, order("o-2", "PENDING", 1)),
    ]
    rejections = await store.write(batch)
    assert [r.id for r in rejections] == ["o-bad"]
    assert "key" in rejections[0].reason
    assert (await store.get("o-0") or {}).get("version") == 5
    for key in ("o-1", "o-2"):
        assert (await store.get(key) or {}).get("version") == 1, key
    assert await store.get("o-bad") is None


@pytest.mark.parametrize("name", ["orders-search", "orders-documents"])
async def test_versions_are_read_by_id_for_what_the_store_holds(
    read_side: ReadSide, name: str
) -> None:
    store = read_side.store(PROJECTIONS[name])
    assert await store.versions(["o-1"]) == {}  # nothing projected yet (no index, in ES)
    await store.prepare()
    await store.write([shaped(name, order("o-1", "CONFIRMED", 3))])
    await store.write([shaped(name, order("o-2", "PENDING", 1))])
    assert await store.versions(["o-1", "o-2", "o-9"]) == {"o-1": 3, "o-2": 1}
    assert await store.versions([]) == {}

"""Product search analysis on the local Elasticsearch: stemming, ASCII folding and stop words.

The integ-test distribution that deploy/local runs lacks the analysis-common module; the
analysis-lite plugin (deploy/local/elasticsearch-analysis) restores the filters and the english
analyzer these tests use, under the names and settings of analysis-common.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from orderflow.projections.elasticsearch import PRODUCT_ANALYSIS

# The analysis the products index uses: these tests check the product code's own settings.
ANALYSIS = PRODUCT_ANALYSIS
PRODUCTS = {
    "shoes": "Running Shoes",
    "mug": "Café Crème Mug",
    "kettle": "The Blue Kettle",
}


@pytest.fixture(scope="module")
def products(elasticsearch: str, run_id: str) -> Iterator[str]:
    """An index of PRODUCTS whose name field uses the product_text analyzer; yields its name."""
    index = f"{run_id}-search-analysis"

    async def create() -> None:
        async with AsyncElasticsearch(elasticsearch) as client:
            plugins = await client.cat.plugins(format="json")
            if "analysis-lite" not in {plugin["component"] for plugin in plugins}:
                pytest.fail(
                    f"the Elasticsearch node at {elasticsearch} runs without the analysis-lite "
                    "plugin; restart it: deploy/local/infra.sh down --only elasticsearch && "
                    "deploy/local/infra.sh up --only elasticsearch"
                )
            await client.indices.create(
                index=index,
                settings={"number_of_shards": 1, "number_of_replicas": 0, "analysis": ANALYSIS},
                mappings={"properties": {"name": {"type": "text", "analyzer": "product_text"}}},
            )
            for product_id, name in PRODUCTS.items():
                await client.index(index=index, id=product_id, document={"name": name})
            await client.indices.refresh(index=index)

    async def delete() -> None:
        async with AsyncElasticsearch(elasticsearch) as client:
            await client.options(ignore_status=404).indices.delete(index=index)

    try:
        asyncio.run(create())
        yield index
    finally:
        asyncio.run(delete())


@pytest.fixture
async def client(elasticsearch: str) -> AsyncIterator[AsyncElasticsearch]:
    async with AsyncElasticsearch(elasticsearch) as client:
        yield client


async def tokens(client: AsyncElasticsearch, text: str, **analyzer: str) -> list[str]:
    analyzed = await client.indices.analyze(text=text, **analyzer)
    return [token["token"] for token in analyzed["tokens"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("shoe", ["shoes"]),
        ("SHOES", ["shoes"]),
        ("run", ["shoes"]),
        ("cafe", ["mug"]),
        ("cafés", ["mug"]),
        ("creme", ["mug"]),
        ("kettles", ["kettle"]),
        ("the", []),
    ],
)
async def test_search_matches_stemmed_folded_words_and_ignores_stop_words(
    client: AsyncElasticsearch, products: str, query: str, expected: list[str]
) -> None:
    found = await client.search(index=products, query={"match": {"name": query}})
    assert sorted(hit["_id"] for hit in found["hits"]["hits"]) == expected


async def test_product_analyzer_stems_and_folds(client: AsyncElasticsearch, products: str) -> None:
    analyzed = await tokens(client, "Running Shoes Café", index=products, analyzer="product_text")
    assert analyzed == ["run", "shoe", "cafe"]
    assert await tokens(client, "the kettle's lids", index=products, analyzer="product_text") == [
        "kettl",
        "lid",
    ]


async def test_english_analyzer_is_available(client: AsyncElasticsearch) -> None:
    assert await tokens(client, "The Running Shoes", analyzer="english") == ["run", "shoe"]

"""Reconciliation: a page of each table against every store, what is behind published again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from orderflow.domain.catalog import ProductView
from orderflow.projections.reconcile import (
    Entry,
    Reconciler,
    Source,
    order_entry,
    product_entry,
)
from orderflow.projections.registry import PROJECTIONS, Projection
from orderflow.projections.stores import StoreUnavailable

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00+00:00
OLD = "2026-12-01T00:00:00+00:00"  # changed long before NOW
SEARCH, DOCUMENTS = PROJECTIONS["orders-search"], PROJECTIONS["orders-documents"]


class Table:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def items(self) -> Any:
        return iter(sorted(self.values.items()))


class VersionStore:
    def __init__(self, held: dict[str, int], down: bool = False) -> None:
        self.held = held
        self.down = down
        self.asked: list[list[str]] = []

    async def versions(self, ids: Sequence[str]) -> dict[str, int]:
        self.asked.append(list(ids))
        if self.down:
            raise StoreUnavailable("down")
        return {i: self.held[i] for i in ids if i in self.held}


def view(order_id: str, version: int, updated_at: str = OLD) -> dict[str, Any]:
    return {"order_id": order_id, "version": version, "updated_at": updated_at}


def reconciler(
    table: Table, stores: dict[str, VersionStore], *, page: int = 2, generation: list[int]
) -> tuple[Reconciler, list[tuple[str, dict[str, Any]]]]:
    published: list[tuple[str, dict[str, Any]]] = []

    async def publish(key: str, document: dict[str, Any]) -> None:
        published.append((key, document))

    source = Source(table, order_entry, [SEARCH, DOCUMENTS], publish)  # type: ignore[arg-type]

    def store_of(projection: Projection) -> Any:
        return stores[projection.name]

    made = Reconciler(
        [source],
        store_of,
        page=page,
        grace=60.0,
        generation=lambda: generation[0],
        settled=lambda: True,
        clock=lambda: NOW,
    )
    return made, published


async def test_documents_a_store_lacks_or_holds_older_are_published_again_once() -> None:
    table = Table({"o-1": view("o-1", 3), "o-2": view("o-2", 2), "o-3": view("o-3", 5)})
    stores = {
        "orders-search": VersionStore({"o-1": 3, "o-2": 1, "o-3": 5}),  # o-2 older
        "orders-documents": VersionStore({"o-1": 3, "o-3": 5}),  # o-2 missing
    }
    made, published = reconciler(table, stores, page=10, generation=[1])
    assert await made.tick() == 1
    assert published == [("o-2", view("o-2", 2))]  # once, though both stores are behind


async def test_a_walk_goes_a_page_at_a_time_and_starts_again_after_a_rebalance() -> None:
    table = Table({f"o-{n}": view(f"o-{n}", 1) for n in range(5)})
    held = {f"o-{n}": 1 for n in range(5)}
    stores = {"orders-search": VersionStore(held), "orders-documents": VersionStore(held)}
    generation = [1]
    made, _ = reconciler(table, stores, page=2, generation=generation)
    for _ in range(3):
        await made.tick()
    assert stores["orders-search"].asked == [["o-0", "o-1"], ["o-2", "o-3"], ["o-4"]]
    await made.tick()  # a new walk
    generation[0] = 2  # a rebalance: the walk starts again on the partitions owned now
    await made.tick()
    assert stores["orders-search"].asked[3:] == [["o-0", "o-1"], ["o-0", "o-1"]]


async def test_recent_changes_are_left_to_the_sinks() -> None:
    table = Table({"o-1": view("o-1", 2, "2027-01-15T07:59:10+00:00")})  # 50 s before NOW
    stores = {"orders-search": VersionStore({}), "orders-documents": VersionStore({})}
    made, published = reconciler(table, stores, generation=[1])
    assert await made.tick() == 0
    assert published == []
    assert stores["orders-search"].asked == []


async def test_a_store_that_does_not_answer_is_skipped_and_the_other_still_checked() -> None:
    table = Table({"o-1": view("o-1", 2)})
    stores = {
        "orders-search": VersionStore({}, down=True),
        "orders-documents": VersionStore({}),
    }
    made, published = reconciler(table, stores, generation=[1])
    assert await made.tick() == 1
    assert published == [("o-1", view("o-1", 2))]


def test_a_product_never_listed_is_not_reconciled() -> None:
    assert product_entry(ProductView("SKU-1")) is None
    listed = ProductView(
        "SKU-1",
        product={"name": "Mug", "description": "", "category": "kitchen", "price": 1,
                 "currency": "EUR", "attributes": {}, "tags": []},
        catalog_version=4,
        updated_at=OLD,
    )  # fmt: skip
    entry = product_entry(listed)
    assert isinstance(entry, Entry)
    assert entry.version == listed.version
    assert entry.document == listed.document()


@pytest.mark.parametrize("updated_at", ["", "not a time"])
def test_a_value_without_a_readable_time_counts_as_old(updated_at: str) -> None:
    assert order_entry(view("o-1", 1, updated_at)).changed_at == 0.0

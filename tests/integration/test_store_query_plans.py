"""Every statement the read side sends to the MongoDB-wire store is served by an index.

FerretDB keeps each collection in a PostgreSQL table, so PostgreSQL's own counters say how
each statement was executed: ``pg_stat_user_tables.seq_scan`` counts every scan of the whole
table, whatever FerretDB sent. With a collection of 20,000 documents, the operations of the
sinks (new, newer, stale and refused documents), of the product view (a read by id), of the
pointer and of a rebuild (a new generation written and switched to) must scan no table from
end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from orderflow.projections import PROJECTIONS
from orderflow.projections.mongodb import MongoCollection
from orderflow.projections.read_side import ReadSide
from orderflow.projections.stores import Document
from orderflow.settings import Settings

STORED = 20_000
FERRETDB_DATABASE = "ferretdb"  # deploy/local/mongodb.sh


@pytest.fixture
async def backend(postgres: str, mongodb: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres.rsplit("/", 1)[0] + f"/{FERRETDB_DATABASE}")
    yield connection
    await connection.close()


@pytest.fixture
async def read_side(mongodb: str, run_id: str) -> AsyncIterator[ReadSide]:
    settings = dataclasses.replace(Settings(), app_id=f"{run_id}-plans", mongodb_url=mongodb)
    side = ReadSide(settings)
    yield side
    for name in await side.mongodb.list_collection_names():
        if name.startswith(f"{settings.app_id}."):
            await side.mongodb.drop_collection(name)
    await side.close()


async def table_of(backend: asyncpg.Connection, database: str, collection: str) -> str:
    """The PostgreSQL table FerretDB keeps ``collection`` in (from its metadata table)."""
    table = await backend.fetchval(
        f"SELECT _jsonb->>'table' FROM \"{database}\"._ferretdb_database_metadata "
        "WHERE _jsonb->>'_id' = $1",
        collection,
    )
    assert table, f"FerretDB has no table for {collection}"
    return f"{database}.{table}"


async def scans(backend: asyncpg.Connection, tables: list[str]) -> dict[str, tuple[int, int]]:
    """(sequential scans, index scans) per table, once every backend has reported its counts:
    a backend reports within 10 s of going idle (PostgreSQL's PGSTAT_IDLE_INTERVAL), so the
    counts are read until they have not moved for longer than that."""
    last: dict[str, tuple[int, int]] | None = None
    stable_since = asyncio.get_running_loop().time()
    while True:
        rows = await backend.fetch(
            "SELECT schemaname || '.' || relname AS name, seq_scan, coalesce(idx_scan, 0) AS idx "
            "FROM pg_stat_user_tables WHERE schemaname || '.' || relname = ANY($1::text[])",
            tables,
        )
        now = {row["name"]: (row["seq_scan"], row["idx"]) for row in rows}
        assert set(now) == set(tables), f"no statistics for {set(tables) - set(now)}"
        loop_time = asyncio.get_running_loop().time()
        if now != last:
            last, stable_since = now, loop_time
        elif loop_time - stable_since >= 11.0:
            return now
        await asyncio.sleep(0.5)


def order(order_id: str, version: int, status: str = "PENDING") -> Document:
    body: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": f"c-{order_id[-2:]}",
        "status": status,
        "reason": None,
        "detail": None,
        "payment_id": None,
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": 500}],
        "total": 500,
        "currency": "EUR",
        "placed_at": "2026-12-01T10:00:00+00:00",
        "updated_at": "2026-12-01T10:00:00+00:00",
        "history": [{"status": status, "at": "2026-12-01T10:00:00+00:00"}],
    }
    shape = PROJECTIONS["orders-documents"].shape
    return Document(order_id, version, shape(body))


async def fill(collection: Any, count: int) -> None:
    """``count`` documents at version 2, inserted directly (the fastest way in)."""
    for start in range(0, count, 1000):
        await collection.insert_many(
            [
                {"_id": f"old-{n:06d}", **order(f"old-{n:06d}", 2).body, "version": 2}
                for n in range(start, min(count, start + 1000))
            ]
        )


async def test_no_statement_of_the_read_side_scans_a_collection(
    read_side: ReadSide, backend: asyncpg.Connection
) -> None:
    store = read_side.store(PROJECTIONS["orders-documents"])
    assert isinstance(store, MongoCollection)
    await store.prepare()
    live = await store.live()
    await fill(read_side.mongodb[live], STORED)
    # A rebuild's new generation, filled too: while a table holds a few pages, scanning it is
    # PostgreSQL's cheapest plan, so each table is measured once it is not small.
    target = await store.new_generation()
    await fill(read_side.mongodb[target], STORED // 4)
    database = read_side.mongodb.name
    tables = {
        "live": await table_of(backend, database, live),
        "pointers": await table_of(backend, database, store.pointers.name),
        "rebuilt": await table_of(backend, database, target),
    }
    before = await scans(backend, list(tables.values()))

    refused = order("new-bad", 1)
    refused.body["lines"] = [{"$sku": "SKU-1"}]
    sink_batches = [
        [order(f"new-{n:03d}", 1) for n in range(25)],  # new documents
        [order(f"old-{n:06d}", 3, "CONFIRMED") for n in range(0, STORED, 997)],  # newer
        [order(f"old-{n:06d}", 1) for n in range(5, STORED, 1999)],  # stale: replayed
        [order("new-001", 2, "CONFIRMED"), refused, order("new-002", 2, "CONFIRMED")],
    ]
    for batch in sink_batches:
        rejections = await store.write(batch)
        assert [r.id for r in rejections] == (["new-bad"] if refused in batch else [])
    assert (await store.get("old-000997") or {}).get("status") == "CONFIRMED"  # the view's read
    assert (await store.get("old-000005") or {}).get("version") == 2
    assert (await store.get("new-001") or {}).get("version") == 2
    # The rebuild writes the new generation by id, then makes it live.
    await store.write([order(f"old-{n:06d}", 3) for n in range(0, STORED // 4, 50)], target)
    await store.write([order(f"old-{n:06d}", 1) for n in range(0, STORED // 4, 70)], target)
    await store.switch(target)
    assert await store.live(refresh=True) == target

    after = await scans(backend, list(tables.values()))
    for name, table in tables.items():
        scanned = after[table][0] - before[table][0]
        assert scanned == 0, f"the {name} table was scanned from end to end {scanned} times"
    for name in ("live", "rebuilt"):
        table = tables[name]
        assert after[table][1] > before[table][1], f"the {name} lookups used no index at all"

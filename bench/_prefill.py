"""Fill a deployment's read-side stores with orders before a benchmark measures anything.

``prefill(settings, count)`` writes ``count`` confirmed one-line order documents into the live
MongoDB collection and Elasticsearch index of the deployment, through the platform's own
stores (the same versioned writes the sinks make), so that the windows after it run against
stores that already hold that many orders, as a deployment in production does. The tables are
not filled: a table is read and written by key, whatever it holds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from orderflow.domain import order_document
from orderflow.domain.orders import Line
from orderflow.projections import PROJECTIONS
from orderflow.projections.read_side import ReadSide
from orderflow.projections.stores import Document
from orderflow.settings import Settings

BATCH = 500
STORES = ("orders-documents", "orders-search")


def _document(n: int) -> dict[str, Any]:
    placed = order_document.pending(
        f"prefill-{n:08d}",
        f"prefill-customer-{n % 5000}",
        "EUR",
        order_document.line_documents([Line(f"PREFILL-{n % 100}", 1, 1000)]),
        "2026-01-01T00:00:00+00:00",
    )
    confirmed = {**placed, "status": order_document.OrderStatus.CONFIRMED}
    confirmed["history"] = [*placed["history"], {"status": "CONFIRMED", "at": placed["placed_at"]}]
    return confirmed


async def _fill(read_side: ReadSide, name: str, count: int) -> float:
    projection = PROJECTIONS[name]
    store = read_side.store(projection)
    await store.prepare()
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        documents = [
            Document(f"prefill-{n:08d}", 3, projection.shape(_document(n)))
            for n in range(start, min(count, start + BATCH))
        ]
        rejections = await store.write(documents)
        if rejections:
            raise RuntimeError(f"{name} refused a prefilled document: {rejections[0]}")
    return time.perf_counter() - started


async def prefill(settings: Settings, count: int) -> dict[str, Any]:
    read_side = ReadSide(settings)
    try:
        seconds = await asyncio.gather(*(_fill(read_side, name, count) for name in STORES))
        # Spot checks by id (counting a FerretDB collection is a scan of it).
        probes = [f"prefill-{n:08d}" for n in (0, count // 2, count - 1)] if count else []
        found = {
            name: len(await read_side.store(PROJECTIONS[name]).versions(probes)) for name in STORES
        }
    finally:
        await read_side.close()
    if any(held != len(probes) for held in found.values()):
        raise RuntimeError(f"the prefilled documents are not all there: {found}")
    return {
        "orders": count,
        "seconds": {name: round(s, 1) for name, s in zip(STORES, seconds, strict=True)},
        "stored": dict.fromkeys(STORES, count),
    }

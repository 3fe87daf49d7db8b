"""What batching buys the sinks: documents per second into each store, batched and one by one.

The same store code path writes the same order documents (orderflow.projections: external
versions in Elasticsearch, version-conditional writes in MongoDB) in batches of the sink's
size and one document per call (the baseline: what a per-event sink would do). A second pass
writes every document again with the same version, as a replay does: nothing changes, and the
cost of finding that out is measured too. Runs against the local servers
(``orderflow infra up --only elasticsearch,mongodb``); both variants in one run, so the ratio
holds on a shared, noisy machine.

    .venv/bin/python bench/projection_writes.py [--documents 3000]

Writes bench/results/projection_writes.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import secrets
import time
from pathlib import Path
from typing import Any

from orderflow.projections import PROJECTIONS
from orderflow.projections.read_side import ReadSide
from orderflow.projections.sink import BATCH_SIZE
from orderflow.projections.stores import Document, Store
from orderflow.settings import Settings

RESULTS = Path(__file__).parent / "results" / "projection_writes.json"


def orders(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"{prefix}-{n}",
            "customer_id": f"customer-{n % 97}",
            "status": "CONFIRMED",
            "reason": None,
            "detail": None,
            "payment_id": f"pay-{n}",
            "lines": [{"sku": f"SKU-{n % 13}", "quantity": 1 + n % 3, "unit_price": 999}],
            "total": 999 * (1 + n % 3),
            "currency": "USD",
            "placed_at": "2026-11-21T10:00:00+00:00",
            "updated_at": "2026-11-21T10:00:01+00:00",
            "history": [{"status": "PENDING", "at": "2026-11-21T10:00:00+00:00"}],
        }
        for n in range(count)
    ]


async def timed(store: Store, documents: list[Document], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(documents), batch):
        rejected = await store.write(documents[start : start + batch])
        assert not rejected, rejected
    return time.perf_counter() - started


async def measure(side: ReadSide, name: str, count: int) -> dict[str, Any]:
    projection = PROJECTIONS[name]
    store = side.store(projection)
    await store.prepare()
    figures: dict[str, Any] = {}
    for variant, batch in (("one_by_one", 1), ("batched", BATCH_SIZE)):
        bodies = orders(count, f"{variant}-{secrets.token_hex(3)}")
        documents = [Document(b["order_id"], 2, projection.shape(b)) for b in bodies]
        first = await timed(store, documents, batch)
        replay = await timed(store, documents, batch)
        figures[variant] = {
            "batch": batch,
            "documents_per_second": round(count / first, 1),
            "replayed_per_second": round(count / replay, 1),
        }
    figures["speedup"] = round(
        figures["batched"]["documents_per_second"] / figures["one_by_one"]["documents_per_second"],
        2,
    )
    figures["replay_speedup"] = round(
        figures["batched"]["replayed_per_second"] / figures["one_by_one"]["replayed_per_second"],
        2,
    )
    return figures


async def main(count: int) -> dict[str, Any]:
    app_id = f"bench-{secrets.token_hex(3)}"
    side = ReadSide(dataclasses.replace(Settings.from_env(), app_id=app_id))
    try:
        return {
            name: await measure(side, name, count) for name in ("orders-search", "orders-documents")
        }
    finally:
        await side.elasticsearch.options(ignore_status=404).indices.delete(index=f"{app_id}-*")
        for name in await side.mongodb.list_collection_names():
            if name.startswith(f"{app_id}."):
                await side.mongodb.drop_collection(name)
        await side.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=3000)
    arguments = parser.parse_args()
    results = {
        "documents": arguments.documents,
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "stores": asyncio.run(main(arguments.documents)),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))

"""What reconciliation costs per 10,000 documents, and that the cost does not grow with the store.

Fills an orders collection and index (the MongoDB-wire and Elasticsearch stores of a
deployment of its own) with ``--stored`` documents, then compares ``--checked`` of them with
each store in the reconciler's pages (orderflow.projections.reconcile: versions read by id),
and reports per 10,000 documents checked: seconds, and CPU seconds of the benchmark's own
process, of Elasticsearch and of the MongoDB-wire store (FerretDB and its PostgreSQL backends).
Run it with two store sizes to see whether the cost depends on them:

    .venv/bin/python bench/reconcile_cost.py --stored 20000 --stored 200000 --checked 10000

Writes bench/results/reconcile_cost.json (and .md).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _components import Components, Snapshot, cpu_between
from _prefill import prefill

from orderflow.projections import PROJECTIONS
from orderflow.projections.read_side import ReadSide
from orderflow.projections.reconcile import behind_in, order_entry
from orderflow.settings import Settings

RESULTS = Path(__file__).parent / "results"
PAGE = 200  # the reconciler's default page (ORDERFLOW_RECONCILE_PAGE)


async def measure(settings: Settings, stored: int, checked: int) -> dict[str, Any]:
    filled = await prefill(settings, stored)
    side = ReadSide(settings)
    components = Components(own={"bench": [os.getpid()]}, database="-")
    entries = {
        f"prefill-{n:08d}": order_entry(
            {"version": 3, "updated_at": "2026-01-01T00:00:00+00:00", "order_id": "x"}
        )
        for n in range(0, stored, max(1, stored // checked))
    }
    ids = list(entries)[:checked]
    result: dict[str, Any] = {"stored": stored, "checked": len(ids), "prefill": filled}
    try:
        for name in ("orders-search", "orders-documents"):
            store = side.store(PROJECTIONS[name])
            before = Snapshot.take(components)
            started = time.perf_counter()
            behind = 0
            for start in range(0, len(ids), PAGE):
                page = {key: entries[key] for key in ids[start : start + PAGE]}
                behind += len(await behind_in(store, page))
            seconds = time.perf_counter() - started
            cpu = cpu_between(before, Snapshot.take(components))
            per = 10_000 / len(ids)
            result[name] = {
                "behind": behind,
                "seconds_per_10k": round(seconds * per, 2),
                "cpu_seconds_per_10k": {k: round(v * per, 2) for k, v in cpu.items() if v},
            }
    finally:
        await side.close()
    return result


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for stored in args.stored:
        name = f"recon-{secrets.token_hex(3)}"
        settings = dataclasses.replace(
            Settings.from_env(),
            app_id=name,
            topic_prefix=f"{name}.",
            mongodb_url=Settings.from_env().mongodb_url.rsplit("/", 1)[0] + f"/{name}",
        )
        try:
            results.append(await measure(settings, stored, args.checked))
        finally:
            side = ReadSide(settings)
            await side.elasticsearch.options(ignore_status=404).indices.delete(index=f"{name}-*")
            await side.mongodb.client.drop_database(name)
            await side.close()
    return results


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Reconciliation cost, {report['at']}",
        "",
        f"`{report['command']}`",
        "",
        "Versions read by id in pages of 200 (the reconciler's reads), every document current, "
        "per 10,000 documents checked; the stores held the given number of orders.",
        "",
        "| stored | store | seconds | CPU seconds (component) |",
        "|---|---|---|---|",
    ]
    for run in report["runs"]:
        for name in ("orders-search", "orders-documents"):
            row = run[name]
            cpu = ", ".join(f"{k} {v}" for k, v in sorted(row["cpu_seconds_per_10k"].items()))
            lines.append(f"| {run['stored']:,} | {name} | {row['seconds_per_10k']} | {cpu} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, action="append", default=[])
    parser.add_argument("--checked", type=int, default=10_000)
    parser.add_argument("--output", default="reconcile_cost")
    args = parser.parse_args()
    args.stored = args.stored or [20_000]
    runs = asyncio.run(run(args))
    report = {
        "benchmark": "reconcile_cost",
        "command": " ".join(["python", "bench/reconcile_cost.py", *sys.argv[1:]]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()

"""A small Faust app for the table recovery test: it counts keyed events into a RocksDB table.

Each event carries its key's sequence number. The table value holds the count and the last
sequence applied, written as one changelog record, so a redelivered event (at-least-once after
a crash) is recognised and not counted twice. Run with ``faust -A tests.e2e.counter_app worker``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from orderflow.app import create_app
from orderflow.settings import Settings

settings = Settings.from_env()
app = create_app(settings, platform=False)

events = app.topic(
    settings.topic("counter.events"),
    key_type=str,
    value_type=bytes,
    value_serializer="raw",
    partitions=settings.topic_partitions,
)
counts = app.Table(
    "counts",
    key_type=str,
    value_type=None,
    partitions=settings.topic_partitions,
    options={"driver": "rocksdict"},
)


@app.agent(events)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for key, value in stream.items():
        seq = int(value)
        state: dict[str, int] = counts.get(key) or {"count": 0, "last_seq": -1}
        if seq <= state["last_seq"]:
            continue
        counts[key] = {"count": state["count"] + 1, "last_seq": seq}


@app.page("/counts")
class Counts(View):
    async def get(self, request: Request) -> Response:
        snapshot: dict[str, Any] = dict(counts.items())
        return self.json(snapshot)

"""What the seek-safe consumer costs in Faust's read loop, against Faust's own consumer.

Both consumers are real and unstarted; only the Kafka fetch is replaced, by batches of 512
records over 8 partitions, already in memory, so the figure is the read loop's own cost per
message (Faust's ``_drain_messages``: fetch, convert, check offsets, deliver) plus the
acknowledgement a stream makes, with no broker, no commits and no processing. The variants run
in the same process, interleaved, best of several rounds; the ratio is what to read.

    .venv/bin/python bench/read_loop.py [--messages 200000] [--rounds 5]

Writes bench/results/read_loop.json.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _compare import best_of, command_line, report
from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message
from mode import Service

from orderflow.app import create_app
from orderflow.resilience.seeks import SeekSafeConsumer
from orderflow.settings import Settings

app = create_app(Settings(), platform=False)
RESULTS = Path(__file__).parent / "results" / "read_loop.json"
TOPIC = "bench-read-loop"
PARTITIONS = [TP(TOPIC, n) for n in range(8)]
BATCH = 512  # 64 records from each partition


def batches(messages: int) -> list[dict[TP, list[ConsumerRecord[bytes, bytes]]]]:
    per_partition = BATCH // len(PARTITIONS)
    made = []
    next_offset = dict.fromkeys(PARTITIONS, 0)
    for _ in range(messages // BATCH):
        batch = {}
        for tp in PARTITIONS:
            start = next_offset[tp]
            batch[tp] = [
                ConsumerRecord(TOPIC, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, ())
                for o in range(start, start + per_partition)
            ]
            next_offset[tp] = start + per_partition
        made.append(batch)
    return made


async def drain(consumer_class: Any, fetches: list[dict[TP, list[Any]]]) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    fetcher = Service(loop=loop)
    delivered = 0
    pending = list(fetches)

    async def stream(message: Message) -> None:
        nonlocal delivered
        delivered += 1
        consumer.ack(message)

    async def fetch(_: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        if not pending:
            fetcher._stopped.set()
            return {}, set()
        return pending.pop(0), set(PARTITIONS)

    consumer: Any = consumer_class(
        app.transport,
        callback=stream,
        on_partitions_revoked=lambda revoked: None,
        on_partitions_assigned=lambda assigned: None,
        loop=loop,
    )
    consumer._wait_next_records = fetch
    consumer.highwater = lambda tp: 0
    consumer._commit_every = None  # no broker to commit to
    try:
        started = time.perf_counter()
        await consumer._drain_messages(fetcher)
        return time.perf_counter() - started, delivered
    finally:
        consumer._thread.thread_loop.close()


async def main(messages: int, rounds: int) -> dict[str, Any]:
    app.topics._acking_topics = {TOPIC}  # type: ignore[attr-defined]
    fetches = batches(messages)
    sent = len(fetches) * BATCH

    def timed(consumer_class: Any) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            # Fresh record lists each round: the read loop does not change them, but a
            # consumer must not see offsets another one already acknowledged.
            seconds, delivered = await drain(consumer_class, [dict(b) for b in fetches])
            assert delivered == sent, (consumer_class, delivered)
            return seconds

        return run

    variants = {"faust": app.transport.Consumer, "seek_safe": SeekSafeConsumer}
    best = await best_of(rounds, {name: timed(kind) for name, kind in variants.items()})
    return report("read_loop", sent, rounds, best, baseline="faust")


if __name__ == "__main__":
    command_line(__doc__ or "", RESULTS, main)

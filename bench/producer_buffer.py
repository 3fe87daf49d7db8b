"""What orderflow's draining producer buffer costs per table write, against Faust's buffer.

Every table write goes through the producer's buffer: put, handed to the Kafka client by the
buffer's task, then acknowledged. orderflow's buffer also counts the messages put, handed over,
acknowledged and failed. Here the client is replaced by a channel that acknowledges each
message as it is handed over, so the figure is the buffer's own cost per message (put, the
hand-over task, the future's resolution and its callbacks) with no broker. Messages are put
100 at a time, Faust's ``max_messages``, and each batch is waited for, as the conductor does
with ``wait_until_ebb``. The variants run in the same process, interleaved, best of several
rounds; the ratio is what to read.

    .venv/bin/python bench/producer_buffer.py [--messages 200000] [--rounds 5]

Writes bench/results/producer_buffer.json.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _compare import best_of, command_line, report
from faust.transport.producer import ProducerBuffer

from orderflow.resilience.producer_buffer import DrainingProducerBuffer

RESULTS = Path(__file__).parent / "results" / "producer_buffer.json"
BATCH = 100


class Acknowledging:
    """A channel whose client takes each message at once and whose broker acknowledges it."""

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        fut.set_result(None)


class Message(asyncio.Future[Any]):
    def __init__(self, channel: Acknowledging) -> None:
        super().__init__()
        self.message = SimpleNamespace(channel=channel)


async def run(kind: type[ProducerBuffer], messages: int) -> float:
    buffer = kind()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = Acknowledging()
    await buffer.start()
    try:
        started = time.perf_counter()
        for _ in range(messages // BATCH):
            batch = [Message(channel) for _ in range(BATCH)]
            for fut in batch:
                buffer.put(fut)  # type: ignore[arg-type]
            await batch[-1]
        return time.perf_counter() - started
    finally:
        await buffer.stop()


async def main(messages: int, rounds: int) -> dict[str, Any]:
    variants: dict[str, type[ProducerBuffer]] = {
        "faust": ProducerBuffer,
        "draining": DrainingProducerBuffer,
    }
    best = await best_of(
        rounds, {name: functools.partial(run, kind, messages) for name, kind in variants.items()}
    )
    return report("producer_buffer", messages // BATCH * BATCH, rounds, best, baseline="faust")


if __name__ == "__main__":
    command_line(__doc__ or "", RESULTS, main)

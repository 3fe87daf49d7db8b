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

import argparse
import asyncio
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, kind in variants.items():
            best[name] = min(best[name], await run(kind, messages))
    sent = messages // BATCH * BATCH
    per_message = {name: best[name] / sent * 1e6 for name in variants}
    return {
        "benchmark": "producer_buffer",
        "messages": sent,
        "rounds": rounds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "microseconds_per_message": {k: round(v, 3) for k, v in per_message.items()},
        "ratio_draining_to_faust": round(per_message["draining"] / per_message["faust"], 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main(args.messages, args.rounds))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))

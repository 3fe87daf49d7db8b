"""The producer buffer's flush waits for every buffered message, however slow the client."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from orderflow.resilience.producer_buffer import DrainingProducerBuffer


class SlowChannel:
    """Hands a message to the client in 0.3 s: a busy worker, or a partition whose metadata
    the client is still fetching."""

    def __init__(self) -> None:
        self.handed: list[int] = []
        self.all_handed = asyncio.Event()

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.3)
        self.handed.append(fut.message.value)
        if len(self.handed) == 3:
            self.all_handed.set()


def _buffer(kind: type[ProducerBuffer]) -> ProducerBuffer:
    buffer = kind()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    return buffer


def _message(channel: SlowChannel, value: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(channel=channel, value=value))


@pytest.mark.parametrize(
    ("kind", "handed_after_flush"),
    [
        (ProducerBuffer, []),  # Faust's: gives up after 0.1 s without a message handed over
        (DrainingProducerBuffer, [1, 2, 3]),
    ],
)
async def test_flush_returns_once_every_message_is_handed_over(
    kind: type[ProducerBuffer], handed_after_flush: list[int]
) -> None:
    channel = SlowChannel()
    buffer = _buffer(kind)
    await buffer.start()
    try:
        for value in (1, 2, 3):
            buffer.put(_message(channel, value))
        await buffer.flush()
        assert channel.handed == handed_after_flush
    finally:
        await channel.all_handed.wait()  # Faust's buffer cannot stop with messages in it
        await buffer.stop()


async def test_a_failed_hand_over_does_not_hold_the_flush() -> None:
    class Refusing(SlowChannel):
        async def publish_message(self, fut: Any, wait: bool = False) -> None:
            raise RuntimeError("refused")

    buffer = _buffer(DrainingProducerBuffer)
    await buffer.start()
    try:
        buffer.put(_message(Refusing(), 1))
        await asyncio.wait_for(buffer.flush(), 5)
        assert (buffer.put_count, buffer.handed_count) == (1, 1)  # type: ignore[attr-defined]
    finally:
        await buffer.stop()

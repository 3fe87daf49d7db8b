"""The producer buffer's flush waits for every buffered message, however slow the client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from orderflow.app import create_app
from orderflow.resilience import producer_buffer
from orderflow.resilience.producer_buffer import DrainingProducerBuffer
from orderflow.settings import Settings
from tests.support.auth import TEST_JWT_SECRET


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


class Message(asyncio.Future[Any]):
    """What Faust puts in the buffer: a future (resolved once Kafka acknowledges the record,
    failed if it never will) that carries its pending message."""

    def __init__(self, channel: SlowChannel, value: int) -> None:
        super().__init__()
        self.message = SimpleNamespace(channel=channel, value=value)


def _message(channel: SlowChannel, value: int) -> Any:
    return Message(channel, value)


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


@pytest.mark.parametrize(
    ("kind", "ebbs"),
    [
        (ProducerBuffer, False),  # Faust's: gives up after 0.1 s without a message handed over
        (DrainingProducerBuffer, True),
    ],
)
async def test_the_streams_wait_until_the_buffer_is_back_to_its_limit(
    kind: type[ProducerBuffer], ebbs: bool
) -> None:
    channel = SlowChannel()
    buffer = _buffer(kind)
    buffer.max_messages = 1
    await buffer.start()
    try:
        for value in (1, 2, 3):
            buffer.put(_message(channel, value))
        await buffer.wait_until_ebb()
        assert (buffer.size <= 1) is ebbs
    finally:
        await channel.all_handed.wait()
        await buffer.stop()


async def test_waiting_on_a_buffer_that_nothing_drains_fails_instead_of_hanging() -> None:
    buffer = _buffer(DrainingProducerBuffer)  # never started: no task hands anything over
    buffer.max_messages = 1
    channel = SlowChannel()
    for value in (1, 2):
        buffer.put(_message(channel, value))
    with pytest.raises(RuntimeError, match="producer buffer"):
        await asyncio.wait_for(buffer.wait_until_ebb(), timeout=5)


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


class Acknowledging(SlowChannel):
    """Hands messages over at once; Kafka acknowledges them, or fails the ones in ``refused``
    (as Faust's Topic._on_published does when the client gives up on a batch)."""

    def __init__(self, refused: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.refused = refused

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        self.handed.append(fut.message.value)
        if fut.message.value in self.refused:
            fut.set_exception(TimeoutError("batch expired: the broker is unreachable"))
        else:
            fut.set_result(len(self.handed))


async def _put_and_flush(channel: SlowChannel, values: tuple[int, ...]) -> Any:
    producer = SimpleNamespace(buffer=_buffer(DrainingProducerBuffer))
    await producer.buffer.start()
    try:
        for value in values:
            producer.buffer.put(_message(channel, value))
        await asyncio.wait_for(producer.buffer.flush(), 5)
    finally:
        await producer.buffer.stop()
    return producer


async def test_every_message_acknowledged_is_delivered() -> None:
    producer = await _put_and_flush(Acknowledging(), (1, 2, 3))

    assert producer_buffer.undelivered(producer) is None


async def test_a_message_kafka_never_took_is_undelivered() -> None:
    producer = await _put_and_flush(Acknowledging(refused=(2,)), (1, 2, 3))

    assert producer_buffer.undelivered(producer) == "3 put, 2 acknowledged, 1 failed, 0 waiting"


async def test_a_message_not_acknowledged_yet_is_undelivered() -> None:
    class Unanswered(SlowChannel):
        async def publish_message(self, fut: Any, wait: bool = False) -> None:
            self.handed.append(fut.message.value)  # handed over; the broker never answers

    producer = await _put_and_flush(Unanswered(), (1, 2))

    assert producer_buffer.undelivered(producer) == "2 put, 0 acknowledged, 0 failed, 2 waiting"


async def test_messages_acknowledged_out_of_order_all_count() -> None:
    class HoldingTheFirst(SlowChannel):
        """Acknowledges every message at once but the first (a slower partition)."""

        async def publish_message(self, fut: Any, wait: bool = False) -> None:
            self.handed.append(fut)
            if len(self.handed) > 1:
                fut.set_result(None)

    channel = HoldingTheFirst()
    values = tuple(range(3 * producer_buffer.SETTLE_AFTER))
    producer = await _put_and_flush(channel, values)
    put = len(values)
    assert producer_buffer.undelivered(producer) == (
        f"{put} put, {put - 1} acknowledged, 0 failed, 1 waiting"
    )

    channel.handed[0].set_result(None)
    assert producer_buffer.undelivered(producer) is None


async def test_a_message_the_client_refused_fails_its_waiters() -> None:
    class Refusing(SlowChannel):
        async def publish_message(self, fut: Any, wait: bool = False) -> None:
            raise RuntimeError("refused")

    channel = Refusing()
    producer = SimpleNamespace(buffer=_buffer(DrainingProducerBuffer))
    await producer.buffer.start()
    try:
        message = _message(channel, 1)
        producer.buffer.put(message)
        with pytest.raises(RuntimeError, match="refused"):
            await asyncio.wait_for(message, 5)
    finally:
        await producer.buffer.stop()
    assert producer_buffer.undelivered(producer) == "1 put, 0 acknowledged, 1 failed, 0 waiting"


def test_a_buffer_that_does_not_count_shows_nothing_delivered() -> None:
    producer = SimpleNamespace(buffer=_buffer(ProducerBuffer))

    assert producer_buffer.undelivered(producer) == "ProducerBuffer does not count acknowledgements"


def test_the_apps_producer_counts_acknowledgements(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, jwt_secret=TEST_JWT_SECRET))

    assert isinstance(app.producer.buffer, DrainingProducerBuffer)
    assert producer_buffer.undelivered(app.producer) is None  # nothing was put

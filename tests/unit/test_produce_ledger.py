"""A record Kafka refused keeps the offsets that caused it from being committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faust.types import TP

from orderflow.app import OrderflowApp, create_app
from orderflow.consumer import WorkerConsumer
from orderflow.resilience import produce_ledger
from orderflow.resilience.produce_ledger import ProduceLedger
from orderflow.settings import Settings


def answered(error: BaseException | None = None) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if error is None:
        future.set_result("metadata")
    else:
        future.set_exception(error)
    return future


async def test_answered_records_leave_the_ledger_and_a_failure_is_kept() -> None:
    ledger = ProduceLedger()
    waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    for sent in (answered(), answered(), waiting):
        ledger.watch(sent)
    assert ledger.failure() is None
    ledger.watch(answered(ValueError("MessageSizeTooLargeError")))
    assert ledger.failure() is None  # behind one Kafka has not answered yet: a flush waits
    waiting.set_result("metadata")
    failure = ledger.failure()
    assert failure is not None
    assert "1 produced record(s) failed" in failure
    assert "MessageSizeTooLargeError" in failure
    ledger.watch(answered())
    assert ledger.failure() == failure  # a failure is not forgotten by later successes


async def test_every_send_of_the_producer_is_watched() -> None:
    class Producer:
        async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            return answered(KeyError("gone") if kwargs.get("fail") else None)

    producer: Any = Producer()
    ledger = produce_ledger.install(producer)
    await producer.send("topic", b"k", b"v")
    assert ledger.failure() is None
    await producer.send("topic", b"k", b"v", fail=True)
    assert producer.ledger is ledger
    assert "KeyError" in (ledger.failure() or "")


class WorkerEnded(Exception):
    pass


@pytest.fixture
def app() -> Iterator[OrderflowApp]:
    made = create_app(Settings(), platform=False)
    yield made
    made.consumer._thread.thread_loop.close()  # made for the Kafka client, never started


async def test_the_worker_commits_nothing_after_a_failed_record(
    app: OrderflowApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = app.consumer
    assert isinstance(consumer, WorkerConsumer)
    committed: list[Any] = []

    async def commit(self: Any, offsets: Any) -> bool:
        committed.append(dict(offsets))
        return True

    def end(reason: str) -> None:
        raise WorkerEnded(reason)

    monkeypatch.setattr("faust.transport.consumer.ThreadDelegateConsumer._commit", commit)
    monkeypatch.setattr("orderflow.consumer.end_worker", end)
    ledger: ProduceLedger = app.producer.ledger  # type: ignore[attr-defined]
    offsets = {TP("orders.commands", 0): 10}
    assert await consumer._commit(offsets) is True
    ledger.watch(answered(TimeoutError("delivery timed out")))
    with pytest.raises(WorkerEnded, match="delivery timed out"):
        await consumer._commit({TP("orders.commands", 0): 11})
    assert committed == [offsets]

"""The saga's deadline timer (orderflow.agents.deadlines): due deadlines only, each told once per
resend interval, stale ones dropped, the heap rebuilt from the table after a rebalance."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from orderflow import schemas
from orderflow.agents.deadlines import DeadlineTimer
from orderflow.schemas.codec import decode
from orderflow.tables import codecs
from orderflow.tables.typed import TypedTable


class SagaReplies:
    """The saga.replies topic as the timer sends to it: what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    async def send(self, *, key: str, value: bytes, headers: Any) -> None:
        record = decode(value)
        assert isinstance(record, schemas.DeadlineExpired)
        self.sent.append((key, record.deadline))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timer(
    deadlines: dict[str, bytes], clock: Clock, *, generation: list[int] | None = None
) -> tuple[DeadlineTimer, SagaReplies, list[bool]]:
    replies = SagaReplies()
    settled = [True]
    generations = generation or [1]
    table: TypedTable[float] = TypedTable(deadlines, codecs.encode, codecs.decode_json)
    made = DeadlineTimer(
        table,
        SimpleNamespace(saga_replies=replies),  # type: ignore[arg-type]
        resend_after=15.0,
        generation=lambda: generations[0],
        settled=lambda: settled[0],
        clock=clock,
    )
    return made, replies, settled


async def test_a_due_deadline_is_told_once_and_again_only_after_the_resend_interval() -> None:
    clock = Clock()
    table = {"o-1": codecs.encode(1005.0)}
    deadlines, replies, _ = timer(table, clock)

    assert await deadlines.tick() == 0  # not due yet
    clock.now = 1006.0
    assert await deadlines.tick() == 1
    for second in range(1, 15):  # the saga agent lags: the expiry waits in its queue
        clock.now = 1006.0 + second
        assert await deadlines.tick() == 0
    clock.now = 1021.0
    assert await deadlines.tick() == 1  # still the saga's deadline: told again
    assert replies.sent == [("o-1", 1005.0), ("o-1", 1005.0)]


async def test_a_saga_that_moved_on_is_not_told() -> None:
    clock = Clock()
    table = {"o-1": codecs.encode(1005.0), "o-2": codecs.encode(1005.0)}
    deadlines, replies, _ = timer(table, clock)
    await deadlines.tick()  # builds the heap from the table

    del table["o-1"]  # closed
    table["o-2"] = codecs.encode(1030.0)  # its next step has a new deadline
    deadlines.track("o-2", 1030.0)
    clock.now = 1010.0
    assert await deadlines.tick() == 0
    clock.now = 1031.0
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-2", 1030.0)]


async def test_deadlines_written_while_running_are_tracked_without_a_scan() -> None:
    clock = Clock()
    table: dict[str, bytes] = {}
    deadlines, replies, _ = timer(table, clock)
    await deadlines.tick()
    table["o-3"] = codecs.encode(1002.0)  # the saga agent writes it and tells the timer
    deadlines.track("o-3", 1002.0)
    clock.now = 1003.0
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-3", 1002.0)]


async def test_after_a_rebalance_the_heap_is_rebuilt_from_the_recovered_table() -> None:
    clock = Clock()
    table: dict[str, bytes] = {}
    generation = [1]
    deadlines, replies, settled = timer(table, clock, generation=generation)
    await deadlines.tick()

    # A rebalance hands this worker a partition whose sagas were never tracked here.
    generation[0] = 2
    settled[0] = False
    table["o-4"] = codecs.encode(990.0)
    assert await deadlines.tick() == 0  # nothing while the table is being recovered
    settled[0] = True
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-4", 990.0)]

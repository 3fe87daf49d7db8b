"""The saga's deadline timer (orderflow.agents.deadlines): due deadlines only, each told once per
resend interval, stale ones dropped, the heap rebuilt from the index of open sagas and their
states after a rebalance."""

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


class Sagas:
    """The index of open sagas (saga_deadlines) and each saga's current deadline (its state)."""

    def __init__(self, **deadlines: float) -> None:
        self.index: dict[str, bytes] = {}
        self.current: dict[str, float | None] = {}
        for order_id, deadline in deadlines.items():
            self.open(order_id, deadline)

    def open(self, order_id: str, deadline: float) -> None:
        self.index[order_id] = codecs.encode(deadline)
        self.current[order_id] = deadline

    def close(self, order_id: str) -> None:
        del self.index[order_id]
        self.current[order_id] = None


def timer(
    sagas: Sagas, clock: Clock, *, generation: list[int] | None = None
) -> tuple[DeadlineTimer, SagaReplies, list[bool]]:
    replies = SagaReplies()
    settled = [True]
    generations = generation or [1]
    index: TypedTable[float] = TypedTable(sagas.index, codecs.encode, codecs.decode_json)
    made = DeadlineTimer(
        index,
        sagas.current.get,
        SimpleNamespace(saga_replies=replies),  # type: ignore[arg-type]
        resend_after=15.0,
        generation=lambda: generations[0],
        settled=lambda: settled[0],
        clock=clock,
    )
    return made, replies, settled


async def test_a_due_deadline_is_told_once_and_again_only_after_the_resend_interval() -> None:
    clock = Clock()
    deadlines, replies, _ = timer(Sagas(**{"o-1": 1005.0}), clock)

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
    sagas = Sagas(**{"o-1": 1005.0, "o-2": 1005.0})
    deadlines, replies, _ = timer(sagas, clock)
    await deadlines.tick()  # builds the heap from the index

    sagas.close("o-1")
    deadlines.forget("o-1")
    sagas.current["o-2"] = 1030.0  # its next step: the index is not written again
    deadlines.track("o-2", 1030.0)
    clock.now = 1010.0
    assert await deadlines.tick() == 0
    clock.now = 1031.0
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-2", 1030.0)]


async def test_a_deadline_changed_where_the_timer_did_not_see_it_is_followed() -> None:
    clock = Clock()
    sagas = Sagas(**{"o-1": 1005.0})
    deadlines, replies, _ = timer(sagas, clock)
    await deadlines.tick()
    sagas.current["o-1"] = 1020.0  # moved on, but this timer was not told (say, a restart)
    clock.now = 1006.0
    assert await deadlines.tick() == 0  # not the saga's deadline any more: not told
    clock.now = 1021.0
    assert await deadlines.tick() == 1  # the current one is followed
    assert replies.sent == [("o-1", 1020.0)]


async def test_deadlines_set_while_running_are_tracked_without_a_scan() -> None:
    clock = Clock()
    sagas = Sagas()
    deadlines, replies, _ = timer(sagas, clock)
    await deadlines.tick()
    sagas.open("o-3", 1002.0)  # the saga agent writes the index and tells the timer
    deadlines.track("o-3", 1002.0)
    deadlines.track("o-3", 1002.0)  # told twice (a redelivery): tracked once
    clock.now = 1003.0
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-3", 1002.0)]


async def test_after_a_rebalance_the_heap_is_rebuilt_from_the_recovered_tables() -> None:
    clock = Clock()
    sagas = Sagas()
    generation = [1]
    deadlines, replies, settled = timer(sagas, clock, generation=generation)
    await deadlines.tick()

    # A rebalance hands this worker a partition whose sagas were never tracked here.
    generation[0] = 2
    settled[0] = False
    sagas.open("o-4", 980.0)
    sagas.current["o-4"] = 990.0  # its state has moved on since the index was written
    assert await deadlines.tick() == 0  # nothing while the tables are being recovered
    settled[0] = True
    assert await deadlines.tick() == 1
    assert replies.sent == [("o-4", 990.0)]
    assert deadlines.pending() == 1  # told again later, if it has not moved on by then

"""The stall watchdog's judgement, on a stand-in for the few app attributes it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from orderflow.views.health import StallWatchdog


@dataclass
class Flow:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class Consumer:
    partitions: dict[Any, int | None] = field(default_factory=dict)  # tp -> highwater
    _committed_offset: dict[Any, int] = field(default_factory=dict)

    def assignment(self) -> set[Any]:
        return set(self.partitions)

    def highwater(self, tp: Any) -> int | None:
        return self.partitions[tp]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def app(**overrides: Any) -> Any:
    fields = {
        "rebalancing": False,
        "in_recovery": False,
        "flow_control": Flow(),
        "consumer": Consumer({TP("p.orders.commands", 0): 10}),
        "consumer_generation_id": 1,
        "settings": SimpleNamespace(processing_guarantee="at_least_once"),
    }
    return SimpleNamespace(**{**fields, **overrides})


def test_suspended_streams_count_within_one_generation_only() -> None:
    clock, worker = Clock(), app(flow_control=Flow(active=False))
    watchdog = StallWatchdog(worker, 90, clock)
    assert watchdog.suspended_for() == 0
    clock.now = 60
    assert watchdog.suspended_for() == 60
    worker.consumer_generation_id = 2  # a new rebalance: a new chance
    assert watchdog.suspended_for() == 0
    clock.now = 100
    assert watchdog.suspended_for() == 40


def test_table_recovery_is_never_a_stall() -> None:
    clock, worker = Clock(), app(flow_control=Flow(active=False), in_recovery=True)
    watchdog = StallWatchdog(worker, 90, clock)
    watchdog.suspended_for()
    clock.now = 1000
    assert watchdog.suspended_for() == 0


def test_a_partition_with_messages_waiting_and_no_progress_is_stuck() -> None:
    clock, worker = Clock(), app()
    (tp,) = worker.consumer.assignment()
    worker.consumer._committed_offset[tp] = 4
    watchdog = StallWatchdog(worker, 90, clock)
    assert watchdog.stuck_partitions() == {}
    clock.now = 95
    assert watchdog.stuck_partitions() == {tp: 95}
    worker.consumer._committed_offset[tp] = 7  # it moved: not stuck
    assert watchdog.stuck_partitions() == {}
    worker.consumer._committed_offset[tp] = 10  # caught up: nothing waiting
    clock.now = 500
    assert watchdog.stuck_partitions() == {}


def test_offsets_are_not_watched_under_exactly_once() -> None:
    clock = Clock()
    worker = app(settings=SimpleNamespace(processing_guarantee="exactly_once"))
    watchdog = StallWatchdog(worker, 90, clock)
    watchdog.stuck_partitions()
    clock.now = 500
    assert watchdog.stuck_partitions() == {}


def test_a_partition_not_fetched_yet_is_not_stuck() -> None:
    clock = Clock()
    tp = TP("p.orders.commands", 1)
    worker = app(consumer=Consumer({tp: None}))  # no fetch has answered: no highwater yet
    watchdog = StallWatchdog(worker, 90, clock)
    assert watchdog.stuck_partitions() == {}
    clock.now = 500
    assert watchdog.stuck_partitions() == {}


def test_a_topic_a_sink_holds_back_on_purpose_is_not_stuck() -> None:
    clock, worker = Clock(), app()
    (tp,) = worker.consumer.assignment()
    worker.consumer._committed_offset[tp] = 4
    worker.held_topics = {tp.topic}  # its store is down: waiting is the back-pressure
    watchdog = StallWatchdog(worker, 90, clock)
    watchdog.stuck_partitions()
    clock.now = 500
    assert watchdog.stuck_partitions() == {}
    worker.held_topics = set()  # the store is back: the partition is watched again
    watchdog.stuck_partitions()
    clock.now = 600
    assert watchdog.stuck_partitions() == {tp: 100}


def test_a_partition_its_sink_stops_holding_is_timed_afresh() -> None:
    clock, worker = Clock(), app()
    (tp,) = worker.consumer.assignment()
    worker.consumer._committed_offset[tp] = 4
    watchdog = StallWatchdog(worker, 90, clock)
    watchdog.stuck_partitions()  # watched from now on
    clock.now += 10
    worker.held_topics = {tp.topic}  # the store goes down
    watchdog.stuck_partitions()
    clock.now += 500
    worker.held_topics = set()  # the store is back: the sink needs a moment to catch up
    assert watchdog.stuck_partitions() == {}
    clock.now += 100
    assert watchdog.stuck_partitions() == {tp: 100}

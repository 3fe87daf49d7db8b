"""The start-up filter: aiokafka's expected errors of a fresh start become INFO, on its two
loggers only, until start-up ends; everything else is left as it was."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import cast

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, NodeNotReadyError
from faust.tables.manager import TableManager

from orderflow.app import create_app
from orderflow.observability import startup_logs
from orderflow.observability.startup_logs import COORDINATOR, StartupNoise
from orderflow.settings import Settings

cluster = logging.getLogger(startup_logs.CLUSTER)
coordinator = logging.getLogger(COORDINATOR)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def noise(clock: Clock, caplog: pytest.LogCaptureFixture) -> Iterator[StartupNoise]:
    caplog.set_level(logging.INFO)
    filter_ = StartupNoise(limit=300, clock=clock)
    startup_logs.install(filter_)
    yield filter_
    startup_logs.remove(filter_)


def levels(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(record.levelname, record.getMessage()) for record in caplog.records]


def fresh_start_errors() -> None:
    # As aiokafka logs them (aiokafka/cluster.py, aiokafka/consumer/group_coordinator.py).
    cluster.error("Topic %s not found in cluster metadata", "orders.commands")
    coordinator.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())


def test_a_fresh_starts_errors_are_info(
    noise: StartupNoise, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_start_errors()
    assert levels(caplog) == [
        ("INFO", "Topic orders.commands not found in cluster metadata"),
        ("INFO", "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"),
    ]


def test_other_errors_of_those_loggers_stay_errors(
    noise: StartupNoise, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.error("Topic %s is not authorized for this client", "orders.commands")
    coordinator.error("Group Coordinator Request failed: %s", NodeNotReadyError())
    coordinator.error("Heartbeat session expired - marking coordinator dead")
    assert [level for level, _ in levels(caplog)] == ["ERROR", "ERROR", "ERROR"]


def test_other_loggers_are_left_alone(
    noise: StartupNoise, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("aiokafka.consumer.fetcher").error(
        "Topic %s not found in cluster metadata", "x"
    )
    logging.getLogger("orderflow").error("Topic %s not found in cluster metadata", "x")
    assert [level for level, _ in levels(caplog)] == ["ERROR", "ERROR"]


def test_after_start_up_they_are_errors_again(
    noise: StartupNoise, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Once the tables have been recovered (the app ends start-up then) ...
    noise.end()
    fresh_start_errors()
    # ... or once the limit has passed, whatever happened.
    other = StartupNoise(limit=300, clock=clock)
    startup_logs.install(other)
    try:
        clock.now += 301
        fresh_start_errors()
    finally:
        startup_logs.remove(other)
    assert [level for level, _ in levels(caplog)] == ["ERROR"] * 4


def test_removed_it_is_gone_from_the_loggers(noise: StartupNoise) -> None:
    startup_logs.remove(noise)
    assert noise not in cluster.filters
    assert noise not in coordinator.filters


def test_nothing_is_logged_below_the_process_level(
    noise: StartupNoise, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiokafka")
    fresh_start_errors()
    assert caplog.records == []


async def test_the_app_ends_start_up_once_its_tables_are_recovered() -> None:
    app = create_app(Settings(store="memory://", jwt_secret="k" * 32), platform=False)
    noise = app.startup_noise
    startup_logs.install(noise)  # as OrderflowApp.on_first_start does
    assert noise in cluster.filters
    ending = asyncio.ensure_future(app._end_startup_noise())
    await asyncio.sleep(0.01)
    assert noise.active  # recovering
    cast(TableManager, app.tables).recovery.completed.set()
    await asyncio.wait_for(ending, 5)
    assert not noise.active
    assert noise not in cluster.filters
    assert noise not in coordinator.filters

"""The outbox relay's loop: what it retries, and what it does between attempts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from orderflow.db import DatabaseUnavailable
from orderflow.settings import Settings
from orderflow.sinks.outbox_relay import OutboxRelay


class Stop(Exception):
    """Ends the relay's loop in these tests."""


def relay_with(outcomes: list[Any]) -> tuple[OutboxRelay, list[str]]:
    """A relay whose batches raise or return ``outcomes`` in turn; it records what it does."""
    settings = replace(Settings(), retry_base_delay=0.001, retry_max_delay=0.002)
    relay = OutboxRelay(settings, database=None)  # type: ignore[arg-type]
    events: list[str] = []

    async def listen() -> None:
        events.append("listen")

    async def publish() -> int:
        events.append("publish")
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return int(outcome)

    async def nothing() -> None:
        pass

    async def drop() -> None:
        events.append("drop")

    async def idle() -> None:
        events.append("idle")
        raise Stop

    relay._ensure_listening = listen  # type: ignore[method-assign]
    relay.publish_batch = publish  # type: ignore[method-assign]
    relay._maybe_prune = nothing  # type: ignore[method-assign]
    relay._drop_connections = drop  # type: ignore[method-assign]
    relay._sleep = idle  # type: ignore[method-assign]
    return relay, events


async def test_kafka_and_postgresql_outages_are_retried_with_the_connections_dropped() -> None:
    outages: list[Any] = [
        KafkaConnectionError(),
        DatabaseUnavailable("PostgreSQL is unavailable"),
        ConnectionRefusedError(),
        0,
    ]
    relay, events = relay_with(outages)
    with pytest.raises(Stop):
        await relay.run()
    failed_cycle = ["listen", "publish", "drop"]
    assert events == [*failed_cycle * 3, "listen", "publish", "idle", "drop"]


async def test_more_outages_than_max_attempts_are_still_retried() -> None:
    relay, events = relay_with([KafkaConnectionError()] * 12 + [0])
    assert relay.settings.retry_policy.max_attempts < 12
    with pytest.raises(Stop):
        await relay.run()
    assert events.count("publish") == 13


async def test_any_other_error_ends_the_relay_at_once() -> None:
    relay, events = relay_with([RuntimeError("bug")])
    with pytest.raises(RuntimeError, match="bug"):
        await relay.run()
    assert events == ["listen", "publish", "drop"]  # the drop of its ``finally``

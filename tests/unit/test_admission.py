"""Admission of new orders from the saga's backlog (orderflow.intake.admission)."""

from __future__ import annotations

import asyncio

import pytest

from orderflow.intake.admission import MAX_RETRY_AFTER, Admission, Backlog, sample_forever


def test_orders_are_welcome_within_both_bounds() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    admission.observe(Backlog(outbox_age=4.9, saga_wait=9.9))
    assert admission.refusal() is None


def test_an_outbox_that_falls_behind_refuses_new_orders_with_a_retry_after() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    admission.observe(Backlog(outbox_age=8.2))
    refusal = admission.refusal()
    assert refusal is not None
    assert "8.2 s" in refusal.reason
    assert refusal.retry_after == 4  # the excess, rounded up


def test_saga_messages_that_wait_too_long_refuse_new_orders() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    admission.observe(Backlog(outbox_age=0.0, saga_wait=12.5))
    refusal = admission.refusal()
    assert refusal is not None
    assert "wait 12.5 s" in refusal.reason
    assert refusal.retry_after == 3


def test_retry_after_is_capped_and_the_door_opens_again() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=0)
    admission.observe(Backlog(outbox_age=3600.0, saga_wait=10**6))
    refusal = admission.refusal()
    assert refusal is not None
    assert refusal.retry_after == MAX_RETRY_AFTER
    admission.observe(Backlog(outbox_age=1.0, saga_wait=10**6))  # the wait check is off
    assert admission.refusal() is None


def test_the_longest_wait_is_taken_once_per_sample() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    for seconds in (0.2, 14.0, 3.0):
        admission.waited(seconds)
    assert admission.longest_wait() == 14.0
    assert admission.longest_wait() == 0.0  # nothing handled since: a rebalance refuses nothing


async def test_the_sampler_keeps_going_when_a_signal_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    ages = iter([RuntimeError("gone"), 9.0, None])
    samples = 0

    async def outbox_age() -> float | None:
        value = next(ages)
        if isinstance(value, Exception):
            raise value
        return value

    async def sleep(seconds: float) -> None:
        nonlocal samples
        samples += 1
        if samples == 2:
            assert admission.refusal() is not None  # 9 s old: refused
        admission.waited(0.5)
        if samples == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await sample_forever(admission, outbox_age, sleep, lambda: False)
    assert "sampling the backlog failed" in caplog.text
    assert admission.backlog == Backlog(0.0, 0.5)  # an unreadable outbox counts as none
    assert admission.refusal() is None


async def test_the_sampler_ends_when_the_worker_stops() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=10.0)
    samples = 0

    async def outbox_age() -> float | None:
        nonlocal samples
        samples += 1
        return None

    async def no_wait(seconds: float) -> None:  # as app.sleep once the worker stops
        return None

    async with asyncio.timeout(5):
        await sample_forever(admission, outbox_age, no_wait, lambda: samples >= 3)
    assert samples == 3  # it ended by itself


def test_the_wait_reported_is_the_records_age_and_nothing_without_a_timestamp() -> None:
    import time
    from types import SimpleNamespace
    from typing import Any

    from orderflow.resilience.handling import _report_wait

    waits: list[tuple[str, float]] = []
    app: Any = SimpleNamespace(waited=lambda name, seconds: waits.append((name, seconds)))
    event: Any = SimpleNamespace(message=SimpleNamespace(timestamp=-0.001))  # no CreateTime
    _report_wait(app, "saga", event)
    assert waits == []
    event.message.timestamp = time.time() - 3.0
    _report_wait(app, "saga", event)
    [(name, seconds)] = waits
    assert name == "saga"
    assert 3.0 <= seconds < 30.0

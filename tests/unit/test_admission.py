"""Admission of new orders from the saga's backlog (orderflow.intake.admission)."""

from __future__ import annotations

import asyncio

import pytest

from orderflow.intake.admission import (
    MAX_RETRY_AFTER,
    Admission,
    Backlog,
    sample_forever,
)


def test_orders_are_welcome_within_both_bounds() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=1000)
    admission.observe(Backlog(outbox_age=4.9, saga_lag=1000))
    assert admission.refusal() is None


def test_an_outbox_that_falls_behind_refuses_new_orders_with_a_retry_after() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=1000)
    admission.observe(Backlog(outbox_age=8.2, saga_lag=0))
    refusal = admission.refusal()
    assert refusal is not None
    assert "8.2 s" in refusal.reason
    assert refusal.retry_after == 4  # the excess, rounded up


def test_a_saga_lag_over_the_bound_refuses_new_orders() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=1000)
    admission.observe(Backlog(outbox_age=0.0, saga_lag=2500))
    refusal = admission.refusal()
    assert refusal is not None
    assert "2500 records" in refusal.reason
    assert refusal.retry_after == 3


def test_retry_after_is_capped_and_the_door_opens_again() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=0)
    admission.observe(Backlog(outbox_age=3600.0, saga_lag=10**9))
    refusal = admission.refusal()
    assert refusal is not None
    assert refusal.retry_after == MAX_RETRY_AFTER
    admission.observe(Backlog(outbox_age=1.0, saga_lag=10**9))  # the lag check is off
    assert admission.refusal() is None


async def test_the_sampler_keeps_going_when_a_signal_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=1000)
    ages = iter([RuntimeError("gone"), 9.0, None])
    samples = 0

    async def outbox_age() -> float | None:
        value = next(ages)
        if isinstance(value, Exception):
            raise value
        return value

    async def saga_lag() -> int | None:
        return 10

    async def sleep(seconds: float) -> None:
        nonlocal samples
        samples += 1
        if samples == 2:
            assert admission.refusal() is not None  # 9 s old: refused
        if samples == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await sample_forever(admission, outbox_age, saga_lag, sleep, lambda: False)
    assert "sampling the backlog failed" in caplog.text
    assert admission.backlog == Backlog(0.0, 10)  # an unreadable outbox counts as none
    assert admission.refusal() is None


async def test_the_sampler_ends_when_the_worker_stops() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_lag=1000)
    samples = 0

    async def signal() -> int:
        nonlocal samples
        samples += 1
        return 0

    async def no_wait(seconds: float) -> None:  # as app.sleep once the worker stops
        return None

    async with asyncio.timeout(5):
        await sample_forever(admission, signal, signal, no_wait, lambda: samples >= 6)
    assert samples == 6  # three samples of two signals, then it ended by itself

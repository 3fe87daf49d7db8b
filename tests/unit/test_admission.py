"""Admission of new orders from the saga's backlog (orderflow.intake.admission)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orderflow.intake.admission import (
    MAX_RETRY_AFTER,
    Admission,
    Backlog,
    Pace,
    delay,
    sample_forever,
)


def test_orders_are_welcome_within_both_bounds() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=5.0)
    admission.observe(Backlog(outbox_age=4.9, saga_lag=900, saga_delay=4.9))
    assert admission.refusal() is None


def test_an_outbox_that_falls_behind_refuses_new_orders_with_a_retry_after() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=5.0)
    admission.observe(Backlog(outbox_age=8.2, saga_lag=0))
    refusal = admission.refusal()
    assert refusal is not None
    assert "8.2 s" in refusal.reason
    assert refusal.retry_after == 4  # the excess, rounded up


def test_a_saga_too_slow_to_work_off_its_records_refuses_new_orders() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=5.0)
    admission.observe(Backlog(outbox_age=0.0, saga_lag=2500, saga_delay=12.5))
    refusal = admission.refusal()
    assert refusal is not None
    assert "2500 records" in refusal.reason
    assert "12.5 s" in refusal.reason
    assert refusal.retry_after == 8


def test_retry_after_is_capped_and_the_door_opens_again() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=0)
    admission.observe(Backlog(outbox_age=3600.0, saga_lag=10**9, saga_delay=10**6))
    refusal = admission.refusal()
    assert refusal is not None
    assert refusal.retry_after == MAX_RETRY_AFTER
    admission.observe(Backlog(outbox_age=1.0, saga_lag=10**9, saga_delay=10**6))  # check off
    assert admission.refusal() is None


def test_the_pace_is_the_progress_of_the_committed_offsets_over_the_window() -> None:
    pace = Pace(window=10.0)
    assert pace.observe(0.0, {"p0": 100, "p1": 50}) is None  # nothing to compare yet
    assert pace.observe(2.0, {"p0": 100, "p1": 50}) is None  # less than half a window
    # A commit moved p0 by 300 and p1 by 100 (a partition new to this worker counts nothing).
    assert pace.observe(6.0, {"p0": 400, "p1": 150, "p2": 9000}) == 400 / 6.0
    assert pace.observe(12.0, {"p0": 400, "p1": 150, "p2": 9000}) == 400 / 10.0
    assert pace.observe(17.0, {"p0": 400, "p1": 150, "p2": 9000}) == 0.0  # the window slid


def test_the_delay_is_the_lag_at_the_pace() -> None:
    assert delay(0, 0.0) == 0.0  # nothing to read
    assert delay(1, 0.0) == 0.0  # an idle worker's commits trailing by a record
    assert delay(500, None) == 0.0  # pace unknown yet: no refusal on that alone
    assert delay(500, 100.0) == 5.0
    assert delay(500, 0.0) == 0.0  # no progress at all: a rebalance or a stall, not a backlog


async def test_the_sampler_keeps_going_when_a_signal_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=5.0)
    ages = iter([RuntimeError("gone"), 9.0, None])
    samples = 0

    async def outbox_age() -> float | None:
        value = next(ages)
        if isinstance(value, Exception):
            raise value
        return value

    async def saga_lag() -> tuple[int, float] | None:
        return 10, 0.5

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
    assert admission.backlog == Backlog(0.0, 10, 0.5)  # an unreadable outbox counts as none
    assert admission.refusal() is None


async def test_the_sampler_ends_when_the_worker_stops() -> None:
    admission = Admission(max_outbox_age=5.0, max_saga_delay=5.0)
    samples = 0

    async def signal() -> Any:
        nonlocal samples
        samples += 1
        return None

    async def no_wait(seconds: float) -> None:  # as app.sleep once the worker stops
        return None

    async with asyncio.timeout(5):
        await sample_forever(admission, signal, signal, no_wait, lambda: samples >= 6)
    assert samples == 6  # three samples of two signals, then it ended by itself

"""The retry loop: attempts, classification, give-up, interruption, retry_after and jitter,
with a recorded sleep and clock instead of real waits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from orderflow.resilience.breaker import BreakerOpen
from orderflow.resilience.policy import RetryPolicy
from orderflow.resilience.retry import (
    FailedAttempt,
    RetryInterrupted,
    TransientError,
    retry,
    retry_after,
)

POLICY = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.4)


class Sleeps:
    """Records every wait instead of waiting; ``then`` runs after each."""

    def __init__(self, then: Callable[[], None] = lambda: None) -> None:
        self.waits: list[float] = []
        self.then = then

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.then()


class Flaky:
    """Fails with ``errors`` in turn, then returns ``"done"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def clock() -> Callable[[], float]:
    ticks = iter(range(100, 10_000))
    return lambda: float(next(ticks))


async def test_a_first_success_neither_waits_nor_calls_a_hook() -> None:
    sleeps, seen = Sleeps(), []
    assert await retry(Flaky(), POLICY, sleep=sleeps, on_retry=seen.append) == "done"
    assert (sleeps.waits, seen) == ([], [])


async def test_transient_failures_are_retried_and_each_is_reported() -> None:
    sleeps, seen = Sleeps(), []
    operation = Flaky(TransientError("a"), TimeoutError("b"))
    result = await retry(
        operation, POLICY, sleep=sleeps, on_retry=seen.append, now=clock(), rng=random.Random(3)
    )
    assert (result, operation.calls) == ("done", 3)
    assert [(f.attempts, f.first_failure_at, f.last_failure_at) for f in seen] == [
        (1, 100.0, 100.0),
        (2, 100.0, 101.0),
    ]
    assert [type(f.error) for f in seen] == [TransientError, TimeoutError]
    assert sleeps.waits == [f.delay for f in seen]  # the hook is told the wait to come


async def test_after_max_attempts_the_give_up_action_gets_the_last_failure() -> None:
    sleeps, given_up = Sleeps(), []
    operation = Flaky(*[TransientError(str(n)) for n in range(10)])

    async def give_up(failed: FailedAttempt) -> str:
        given_up.append(failed)
        return "dead-lettered"

    result = await retry(operation, POLICY, sleep=sleeps, give_up=give_up, now=clock())
    assert (result, operation.calls, len(sleeps.waits)) == ("dead-lettered", 3, 2)
    [failed] = given_up
    assert (str(failed.error), failed.attempts, failed.delay) == ("2", 3, 0.0)
    assert (failed.first_failure_at, failed.last_failure_at) == (100.0, 102.0)


async def test_without_a_give_up_action_the_last_error_is_raised() -> None:
    operation = Flaky(*[TransientError(str(n)) for n in range(10)])
    with pytest.raises(TransientError, match=r"^2$"):
        await retry(operation, POLICY, sleep=Sleeps())
    assert operation.calls == 3


async def test_a_permanent_error_gives_up_at_once() -> None:
    sleeps, seen, given_up = Sleeps(), [], []

    async def give_up(failed: FailedAttempt) -> str:
        given_up.append(failed.attempts)
        return "dead-lettered"

    operation = Flaky(ValueError("bug"))
    result = await retry(operation, POLICY, sleep=sleeps, on_retry=seen.append, give_up=give_up)
    assert (result, operation.calls, sleeps.waits, seen, given_up) == (
        "dead-lettered",
        1,
        [],
        [],
        [1],
    )
    with pytest.raises(ValueError, match="bug"):
        await retry(Flaky(ValueError("bug")), POLICY, sleep=sleeps)


async def test_the_classifier_decides_what_is_transient() -> None:
    operation = Flaky(ValueError("anything"), KeyError("goes"))
    result = await retry(operation, POLICY, transient=lambda error: True, sleep=Sleeps())
    assert (result, operation.calls) == ("done", 3)
    with pytest.raises(TimeoutError):
        await retry(Flaky(TimeoutError()), POLICY, transient=lambda e: False, sleep=Sleeps())


async def test_forever_keeps_trying_past_max_attempts() -> None:
    sleeps, seen = Sleeps(), []
    operation = Flaky(*[TransientError(str(n)) for n in range(1100)])
    result = await retry(operation, POLICY, forever=True, sleep=sleeps, on_retry=seen.append)
    assert (result, operation.calls, len(sleeps.waits)) == ("done", 1101, 1100)
    assert [f.attempts for f in seen] == list(range(1, 1101))
    # 0.1 * 2 ** 1099 would overflow a float: past MAX_DELAY_EXPONENT the ceiling stays put.
    assert all(0 <= wait <= POLICY.max_delay for wait in sleeps.waits)


async def test_forever_still_gives_up_on_a_permanent_error() -> None:
    operation = Flaky(TransientError("a"), ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await retry(operation, POLICY, forever=True, sleep=Sleeps())
    assert operation.calls == 2


async def test_waits_are_full_jitter_under_the_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=0.1, max_delay=0.5)
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
    runs: list[list[float]] = []
    rng = random.Random(7)
    for _ in range(300):
        sleeps = Sleeps()
        operation = Flaky(*[TransientError("down")] * 5)
        await retry(operation, policy, sleep=sleeps, rng=rng)
        assert all(0 <= w <= c for w, c in zip(sleeps.waits, ceilings, strict=True))
        runs.append(sleeps.waits)
    for index, ceiling in enumerate(ceilings):
        waits = [run[index] for run in runs]
        assert min(waits) < ceiling * 0.2  # spread over the whole range, not fixed
        assert max(waits) > ceiling * 0.8


async def test_a_retry_after_hint_lengthens_the_wait() -> None:
    sleeps = Sleeps()
    operation = Flaky(BreakerOpen("store", retry_after=7.5), BreakerOpen("store", 0.0))
    assert await retry(operation, POLICY, sleep=sleeps) == "done"
    assert sleeps.waits[0] == 7.5  # the jittered wait is never longer than 0.1
    assert sleeps.waits[1] <= 0.2  # a hint shorter than the backoff changes nothing


async def test_a_retry_after_hint_can_be_ignored() -> None:
    sleeps = Sleeps()
    operation = Flaky(BreakerOpen("gateway", retry_after=7.5))
    await retry(operation, POLICY, sleep=sleeps, honour_retry_after=False)
    assert len(sleeps.waits) == 1
    assert sleeps.waits[0] <= 0.1


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (BreakerOpen("b", 3.0), 3.0),
        (TransientError("no hint"), None),
        (type("Odd", (Exception,), {"retry_after": "soon"})(), None),
        (type("Negative", (Exception,), {"retry_after": -1})(), None),
        (type("Flag", (Exception,), {"retry_after": True})(), None),
    ],
)
def test_only_a_non_negative_number_is_a_retry_after_hint(
    error: Exception, hint: float | None
) -> None:
    assert retry_after(error) == hint


async def test_an_interruption_ends_the_wait_and_raises_without_another_attempt() -> None:
    stop = False

    def after_sleep() -> None:
        nonlocal stop
        stop = len(sleeps.waits) == 2  # a stop begins during the first wait

    sleeps = Sleeps(then=after_sleep)
    operation = Flaky(*[BreakerOpen("store", retry_after=1.0)] * 10)  # waits of 1 s
    with pytest.raises(RetryInterrupted) as interruption:
        await retry(
            operation, POLICY, forever=True, interrupted=lambda: stop, sleep=sleeps, poll=0.2
        )
    assert operation.calls == 1
    assert sleeps.waits == [0.2, 0.2]  # waited in slices, and no further
    assert interruption.value.failed.attempts == 1
    assert interruption.value.__cause__ is interruption.value.failed.error


async def test_an_interruption_is_looked_at_again_when_a_wait_ends() -> None:
    sleeps = Sleeps()

    def interrupted() -> bool:
        return len(sleeps.waits) == 1  # true once the first wait (a single slice) is over

    operation = Flaky(TransientError("down"), TransientError("down"))
    with pytest.raises(RetryInterrupted):
        await retry(operation, POLICY, interrupted=interrupted, sleep=sleeps, poll=10.0)
    assert (operation.calls, len(sleeps.waits)) == (1, 1)


async def test_sliced_waits_add_up_to_the_delay() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.1)
    sleeps, seen = Sleeps(), []
    operation = Flaky(BreakerOpen("store", retry_after=1.0))
    await retry(
        operation, policy, interrupted=lambda: False, sleep=sleeps, poll=0.3, on_retry=seen.append
    )
    assert sum(sleeps.waits) == pytest.approx(1.0) == seen[0].delay
    assert len(sleeps.waits) == 4


async def test_an_async_hook_is_awaited_before_the_wait() -> None:
    events: list[str] = []

    async def reconnect(failed: FailedAttempt) -> None:
        await asyncio.sleep(0)
        events.append(f"hook {failed.attempts}")

    async def sleep(seconds: float) -> None:
        events.append("wait")

    await retry(
        Flaky(TransientError("a"), TransientError("b")), POLICY, on_retry=reconnect, sleep=sleep
    )
    assert events == ["hook 1", "wait", "hook 2", "wait"]


async def test_cancellation_is_not_retried() -> None:
    operation = Flaky(asyncio.CancelledError())  # type: ignore[arg-type]
    sleeps = Sleeps()
    with pytest.raises(asyncio.CancelledError):
        await retry(operation, POLICY, transient=lambda error: True, sleep=sleeps)
    assert (operation.calls, sleeps.waits) == (1, [])

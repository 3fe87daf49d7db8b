"""Retry policy, error classification, circuit breaker, DLQ headers and selection, codec errors."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from orderflow import schemas
from orderflow.payments.gateway import GatewayError, GatewayTimeout, GatewayUnavailable
from orderflow.resilience import dlq, handling
from orderflow.resilience.breaker import BreakerConfig, BreakerOpen, BreakerState, CircuitBreaker
from orderflow.resilience.dlq_store import DeadLetter, Selection
from orderflow.resilience.policy import RetryPolicy
from orderflow.resilience.retry import TransientError, is_transient
from orderflow.schemas.codec import SchemaError, decode


def test_full_jitter_stays_under_an_exponential_ceiling_and_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (GatewayTimeout("slow"), True),
        (GatewayUnavailable("down"), True),
        (TransientError("later"), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (KafkaTimeoutError(), True),
        (UnknownTopicOrPartitionError(), True),
        (GatewayError("unknown payment"), False),
        (SchemaError("garbage"), False),
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
)
def test_errors_are_classified(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _fail() -> None:
    raise GatewayUnavailable("down")


async def _succeed() -> str:
    return "ok"


async def test_the_breaker_opens_fails_fast_then_half_opens_and_closes() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(
        "gw", BreakerConfig(3, 10.0, 1), clock=clock, on_change=lambda b: changes.append(b.state)
    )
    for _ in range(3):
        with pytest.raises(GatewayUnavailable):
            await breaker.call(_fail)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen) as open_error:
        await breaker.call(_succeed)  # not even attempted
    assert open_error.value.retry_after == pytest.approx(10.0)
    assert is_transient(open_error.value)

    clock.now = 10.5
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.call(_succeed) == "ok"
    assert breaker.state is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker("gw", BreakerConfig(1, 5.0, 1), clock=clock)
    with pytest.raises(GatewayUnavailable):
        await breaker.call(_fail)
    clock.now = 6.0
    with pytest.raises(GatewayUnavailable):
        await breaker.call(_fail)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == pytest.approx(5.0)


async def test_errors_that_are_not_failures_do_not_count() -> None:
    breaker = CircuitBreaker("gw", BreakerConfig(1, 5.0, 1))

    async def declined_for_good() -> None:
        raise GatewayError("unknown payment")

    with pytest.raises(GatewayError):
        await breaker.call(declined_for_good)
    assert breaker.state is BreakerState.CLOSED


async def test_a_dead_letter_is_sent_again_until_the_broker_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller acknowledges the message once dead_letter returns: it must not give up, not
    even after the policy's max_attempts, and not on an error that is not transient."""
    app = SimpleNamespace(
        settings=SimpleNamespace(retry_policy=RetryPolicy(2, base_delay=0.001, max_delay=0.002))
    )
    message = SimpleNamespace(topic="p.orders.commands", partition=1, offset=7)
    failure = dlq.Failure(SchemaError("not JSON"), 1, 1.0, 2.0, "saga")
    calls: list[object] = []

    async def send(app: object, sent: object, why: object) -> None:
        calls.append((sent, why))
        if len(calls) < 3:
            raise KafkaTimeoutError()
        if len(calls) < 4:
            raise ValueError("not transient, and still retried")

    monkeypatch.setattr(dlq, "_send", send)
    await dlq.dead_letter(app, message, failure)
    assert calls == [(message, failure)] * 4


def test_failure_headers_tell_the_whole_story() -> None:
    failure = dlq.Failure(SchemaError("not JSON"), 3, 1_700_000_000.0, 1_700_000_002.5, "saga")
    headers = dlq.failure_headers("p.orders.commands", 2, 41, failure)
    assert headers == {
        "dlq.error.type": b"SchemaError",
        "dlq.error.message": b"not JSON",
        "dlq.attempts": b"3",
        "dlq.first_failure_at": b"2023-11-14T22:13:20.000+00:00",
        "dlq.last_failure_at": b"2023-11-14T22:13:22.500+00:00",
        "dlq.origin.topic": b"p.orders.commands",
        "dlq.origin.partition": b"2",
        "dlq.origin.offset": b"41",
        "dlq.handler": b"saga",
    }


def _letter(error_type: str, key: bytes, failed_at: str) -> DeadLetter:
    headers = ((dlq.ERROR_TYPE, error_type.encode()), (dlq.LAST_FAILURE, failed_at.encode()))
    return DeadLetter("t.dlq", 0, 0, 0, key, b"{}", headers)


def test_a_selection_filters_by_error_type_key_and_time() -> None:
    letter = _letter("SchemaError", b"o-1", "2026-01-02T10:00:00.000+00:00")
    assert Selection().matches(letter)
    assert Selection(error_type="SchemaError", key="o-1").matches(letter)
    assert not Selection(error_type="GatewayUnavailable").matches(letter)
    assert not Selection(key="o-2").matches(letter)
    noon = datetime(2026, 1, 2, 12, tzinfo=UTC)
    assert Selection(until=noon).matches(letter)
    assert not Selection(since=noon).matches(letter)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\xff garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"__faust": {"ns": "orderflow.Nope"}}', "unknown record type 'orderflow.Nope'"),
        (b'{"order_id": "o"}', "unknown record type None"),
        (None, "no value"),
    ],
)
def test_undecodable_messages_are_schema_errors(raw: bytes | None, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        decode(raw)


def test_a_record_with_a_missing_or_mistyped_field_is_a_schema_error() -> None:
    record = schemas.ReserveStock(**schemas.envelope("o"), order_id="o", sku="s", quantity=2)
    good = record.dumps()
    assert decode(good) == record
    with pytest.raises(SchemaError, match="sku"):
        decode(good.replace(b'"sku":"s",', b""))
    with pytest.raises(SchemaError, match="quantity"):
        decode(good.replace(b'"quantity":2', b'"quantity":"two"'))


def handled_event() -> Any:
    command = schemas.ReserveStock(**schemas.envelope("o-1"), order_id="o-1", sku="S", quantity=1)
    message = SimpleNamespace(topic="p.inventory.commands", partition=2, offset=9)
    return SimpleNamespace(value=command.dumps(), message=message)


async def dead_letters(
    monkeypatch: pytest.MonkeyPatch, handler: handling.Handler, policy: RetryPolicy
) -> list[tuple[Any, dlq.Failure]]:
    """Runs handle_event on one message; returns what it dead-lettered."""
    dead: list[tuple[Any, dlq.Failure]] = []

    async def record(app: object, message: object, failure: dlq.Failure) -> None:
        dead.append((message, failure))

    monkeypatch.setattr(handling, "dead_letter", record)
    event = handled_event()
    await asyncio.wait_for(handling.handle_event(None, event, handler, "stock", policy), 2)
    return dead


async def test_a_handler_is_retried_then_its_message_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def down(record: schemas.Message, event: object) -> None:
        calls.append(type(record).__name__)
        raise GatewayUnavailable(f"down {len(calls)}")

    dead = await dead_letters(monkeypatch, down, RetryPolicy(3, base_delay=0.001, max_delay=0.002))
    assert calls == ["ReserveStock"] * 3
    [(message, failure)] = dead
    assert (message.offset, failure.attempts, str(failure.error)) == (9, 3, "down 3")
    assert failure.first_failure_at < failure.last_failure_at
    assert failure.handler == "stock"


async def test_a_permanent_error_is_dead_lettered_at_the_first_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    async def refuse(record: schemas.Message, event: object) -> None:
        calls.append(1)
        raise GatewayError("unknown payment")

    dead = await dead_letters(monkeypatch, refuse, RetryPolicy(5, base_delay=1.0, max_delay=1.0))
    assert (len(calls), [f.attempts for _, f in dead]) == (1, [1])


async def test_a_handler_does_not_wait_for_an_open_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waiting out the breaker's retry_after would hold the partition for its open time per
    attempt; the handler's attempts stay quick and the message goes to the DLQ."""

    async def breaker_open(record: schemas.Message, event: object) -> None:
        raise BreakerOpen("gateway", retry_after=30.0)

    policy = RetryPolicy(2, base_delay=0.001, max_delay=0.002)
    dead = await dead_letters(monkeypatch, breaker_open, policy)  # within 2 s, not 30
    assert [(type(f.error), f.attempts) for _, f in dead] == [(BreakerOpen, 2)]

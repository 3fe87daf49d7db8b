"""How every agent processes a message: decode, handle, retry what is transient, dead-letter
what cannot succeed, and always move on to the next message.

A handler that raises never stops the agent and never loses the message: after the retries
(transient errors, with backoff and jitter; the partition waits meanwhile, which is the
back-pressure) or at once (permanent errors, including undecodable and schema-invalid
messages), the message goes to its topic's DLQ twin with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from faust.streams import _current_event as faust_current_event
from faust.types import EventT, StreamT
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from orderflow.observability import tracing
from orderflow.observability.logs import CORRELATION_ID
from orderflow.observability.metrics import (
    DEAD_LETTERED,
    EVENTS_PROCESSED,
    PROCESSING_TIME,
    RETRIED,
)
from orderflow.resilience.dlq import Failure, dead_letter
from orderflow.resilience.retry import FailedAttempt, RetryPolicy, is_transient, retry
from orderflow.runtime import Runtime
from orderflow.schemas import Message
from orderflow.schemas.codec import decode

log = logging.getLogger(__name__)

Handler = Callable[[Message, EventT[Any]], Awaitable[None]]


async def handle_event(
    app: Runtime, event: EventT[Any], handler: Handler, name: str, policy: RetryPolicy
) -> None:
    message = event.message

    async def attempt() -> None:
        record = decode(event.value)
        token = CORRELATION_ID.set(record.correlation_id)
        try:
            await handler(record, event)
        finally:
            CORRELATION_ID.reset(token)

    def retrying(failed: FailedAttempt) -> None:
        where, error = _where(message), failed.error
        log.warning("%s: attempt %d on %s failed: %r", name, failed.attempts, where, error)
        RETRIED.labels(name).inc()

    async def give_up(failed: FailedAttempt) -> None:
        error, attempts, where = failed.error, failed.attempts, _where(message)
        log.error("%s: dead-lettering %s after %d attempt(s): %r", name, where, attempts, error)
        DEAD_LETTERED.labels(name, type(error).__name__).inc()
        failure = Failure(error, attempts, failed.first_failure_at, failed.last_failure_at, name)
        await dead_letter(app, message, failure)

    # No interruption: a rebalance waits for the message in hand (app.in_flight). An open
    # breaker's retry_after is not waited for either: it could hold the partition for the
    # breaker's whole open time per attempt, where the handler's few quick attempts end in
    # the DLQ, from which the message is replayed.
    await retry(
        attempt,
        policy,
        transient=is_transient,
        give_up=give_up,
        on_retry=retrying,
        honour_retry_after=False,
    )


def _where(message: Any) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


async def process(app: Runtime, stream: StreamT[Any], handler: Handler, name: str) -> None:
    """Run ``handler`` on every message of ``stream``, one at a time, in order."""
    policy = app.settings.retry_policy
    processed = EVENTS_PROCESSED.labels(name)
    timing = PROCESSING_TIME.labels(name)
    in_flight = app.in_flight
    async for event in stream.events():
        started = time.perf_counter()
        in_flight.begin()
        try:
            if tracing.enabled():
                await _traced(app, event, handler, name, policy)
            else:
                await handle_event(app, event, handler, name, policy)
        finally:
            in_flight.end()
        timing.observe(time.perf_counter() - started)
        processed.inc()
        _report_wait(app, name, event)


def _report_wait(app: Runtime, name: str, event: EventT[Any]) -> None:
    """How long the message waited between being produced and being handled (what the
    intake's admission reads); a record without a producer's timestamp (-1) tells nothing."""
    produced = event.message.timestamp
    if produced and produced > 0:
        app.waited(name, max(time.time() - produced, 0.0))


async def process_by_key(
    app: Runtime,
    stream: StreamT[Any],
    handler: Handler,
    name: str,
    *,
    batch_size: int = 200,
) -> None:
    """Run ``handler`` on every message of ``stream``: one key's messages in order, different
    keys' messages at the same time. For handlers that wait on a service (the payment gateway)
    rather than on the CPU: N orders' calls overlap instead of queueing behind each other.

    Messages are taken in batches (:func:`arrived`, at most ``batch_size``); each key's
    messages of a batch run as one task, in order, and the batch's
    messages are acknowledged once all of them are done, in offset order, so no commit passes a
    message still in progress (Faust's agent ``concurrency`` can: faust-streaming #606). Each
    task sets its own message as Faust's current event, which is what decides the changelog
    partition of the tables it writes.
    """
    policy = app.settings.retry_policy
    processed = EVENTS_PROCESSED.labels(name)
    timing = PROCESSING_TIME.labels(name)
    handle = _traced if tracing.enabled() else handle_event

    async def in_order(events: list[EventT[Any]]) -> None:
        for event in events:
            started = time.perf_counter()
            faust_current_event.set(weakref.ref(event))
            await handle(app, event, handler, name, policy)
            timing.observe(time.perf_counter() - started)
            _report_wait(app, name, event)

    manual: StreamT[Any] = stream.noack()  # type: ignore[attr-defined]
    async for batch in arrived(manual, batch_size):
        by_key: dict[Any, list[EventT[Any]]] = {}
        for event in batch:
            by_key.setdefault(event.message.key, []).append(event)
        with app.in_flight.hold(len(batch)):
            await asyncio.gather(*(in_order(events) for events in by_key.values()))
            for event in batch:
                await manual.ack(event)
        processed.inc(len(batch))


async def arrived(stream: StreamT[Any], most: int) -> AsyncIterator[list[EventT[Any]]]:
    """``stream``'s events in batches of what has arrived: each batch is the next event, as
    soon as it comes, and the events already waiting behind it in the stream's queue (at most
    ``most`` in all).

    No timer: an idle agent sleeps until a message comes and handles it at once, a busy one
    takes together what queued while it worked. (Faust's ``take`` wakes every ``within``
    seconds, busy or not, and holds a lone message until then.)
    """
    queue = stream.channel.queue  # type: ignore[attr-defined]
    events = aiter(stream.events())
    async for first in events:
        batch = [first]
        while len(batch) < most and not queue.empty():
            try:
                batch.append(await anext(events))
            except StopAsyncIteration:
                break
        yield batch


async def _traced(
    app: Runtime, event: EventT[Any], handler: Handler, name: str, policy: RetryPolicy
) -> None:
    message = event.message
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": message.topic,
        "messaging.kafka.partition": message.partition,
        "messaging.kafka.offset": message.offset,
        "orderflow.handler": name,
    }
    if message.key is not None:
        attributes["orderflow.key"] = bytes(message.key).decode(errors="replace")

    async def traced_handler(record: Message, received: EventT[Any]) -> None:
        current = trace.get_current_span()
        current.set_attribute("orderflow.order_id", record.correlation_id)
        current.set_attribute("orderflow.message", type(record).__name__)
        await handler(record, received)

    with tracing.span(
        f"{name} process",
        kind=SpanKind.CONSUMER,
        parent=tracing.extract(message.headers),
        attributes=attributes,
    ):
        await handle_event(app, event, traced_handler, name, policy)

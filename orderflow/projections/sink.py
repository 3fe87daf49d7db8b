"""The sink loop: batches from a documents topic, written to a store, acknowledged after.

A batch is at most ``BATCH_SIZE`` documents or what arrived within ``BATCH_WINDOW`` seconds.
Offsets are acknowledged only once the whole batch is in the store (or in the DLQ), so a worker
killed mid-batch leaves the batch to be read again, and rewriting it is harmless (versions).

A store that is down or overloaded is retried with backoff and jitter through its circuit
breaker, for as long as it takes: the partitions wait, which is the back-pressure, and nothing
is dropped. After ``max_attempts`` tries the sink marks its topic as held, so the stall
watchdog knows the wait is deliberate. When a rebalance begins meanwhile, or the worker is
asked to stop, the sink gives the batch up unacknowledged (it is delivered again afterwards)
instead of holding the rebalance, and with it the whole consumer group, or the stop, until the
store is back; so does every batch after it until that rebalance or stop is over, since
acknowledging a later offset could let the commit pass over the batch given up. A document the
store refuses for good (a mapping error, say) and a message that is not a document go to the
topic's DLQ with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from faust.types import EventT, StreamT

from orderflow.observability import tracing
from orderflow.observability.metrics import (
    DEAD_LETTERED,
    EVENTS_PROCESSED,
    PROJECTED,
    PROJECTION_BATCH_TIME,
    RETRIED,
)
from orderflow.projections.registry import Projection
from orderflow.projections.stores import Document, RejectedByStore, Store
from orderflow.resilience.dlq import Failure, dead_letter
from orderflow.resilience.ending import end_worker
from orderflow.resilience.retry import FailedAttempt, RetryInterrupted, is_transient, retry
from orderflow.runtime import Runtime

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_WINDOW = 0.25  # seconds
REBALANCE_CHECK = 0.2  # seconds between looks for a rebalance or a stop while a store is retried


class BatchAbandoned(Exception):
    """A rebalance or a stop began while the store refused the batch: it is left
    unacknowledged."""


class NotADocument(ValueError):
    """A message on a documents topic that is not a versioned JSON document."""


def parse(key: Any, value: bytes, projection: Projection) -> Document:
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise NotADocument(f"not JSON: {error}") from None
    if isinstance(key, bytes):
        key = key.decode(errors="replace")
    if not isinstance(body, dict) or not key:
        raise NotADocument("a document is a JSON object with a key")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise NotADocument("a document carries a non-negative integer version")
    try:
        shaped = projection.shape(body)
    except (KeyError, TypeError, AttributeError) as error:
        raise NotADocument(f"not a {projection.entity} document: missing {error}") from None
    return Document(str(key), version, shaped)


def latest_per_id(documents: Sequence[Document]) -> list[Document]:
    """One document per id, the newest; a batch often holds several versions of one."""
    latest: dict[str, Document] = {}
    for document in documents:
        kept = latest.get(document.id)
        if kept is None or document.version > kept.version:
            latest[document.id] = document
    return list(latest.values())


class Sink:
    """Writes one projection's batches to its store."""

    fail: Callable[[str], None] = staticmethod(end_worker)

    def __init__(self, app: Runtime, projection: Projection, store: Store) -> None:
        self.app = app
        self.projection = projection
        self.store = store
        self.breaker = app.breaker(projection.store.value)
        self.topic = app.settings.topic(projection.source)
        self.prepared = False
        self.gave_up = False  # a batch was given up, and its rebalance or stop may still run

    async def run(self, stream: StreamT[Any]) -> None:
        """Project ``stream`` for as long as the worker runs. Anything that escapes ends the
        worker (orderflow.resilience.ending): Faust would restart the agent on the same stream with
        its acknowledgements turned back on (noack_take's ``finally``), so offsets could be
        committed for documents no store has; a new worker reads them again instead."""
        try:
            await self._project(stream)
        except Exception as error:
            self.fail(f"{self.projection.name}: the sink failed: {error!r}")

    async def _project(self, stream: StreamT[Any]) -> None:
        processed = EVENTS_PROCESSED.labels(self.projection.name)
        timing = PROJECTION_BATCH_TIME.labels(self.projection.name)
        await self._prepare_early()
        # noack_take leaves acknowledging to us: only after the batch is written.
        batches = stream.noack_take(BATCH_SIZE, within=BATCH_WINDOW)  # type: ignore[attr-defined]
        async for events in batches:
            started = time.perf_counter()
            with self.app.in_flight.hold(len(events)):
                try:
                    if self._still_interrupted():
                        raise BatchAbandoned(self.projection.name)
                    await self.write_batch(events)
                except BatchAbandoned:
                    self.gave_up = True
                    log.warning(
                        "%s: gave up a batch of %d for the rebalance or stop; it comes again",
                        self.projection.name,
                        len(events),
                    )
                    continue
                for event in events:
                    await stream.ack(event)
            timing.observe(time.perf_counter() - started)
            processed.inc(len(events))

    async def _prepare_early(self) -> None:
        """Create the index or collection at start, so readers find it before any write; a
        store that is not up yet is prepared by the first write instead."""
        try:
            await self.breaker.call(self.store.prepare)
            self.prepared = True
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("%s: the store is not ready yet: %s", self.projection.name, error)

    async def write_batch(self, events: Sequence[EventT[Any]]) -> None:
        started = time.time()
        parsed: list[tuple[EventT[Any], Document]] = []
        for event in events:
            try:
                parsed.append((event, parse(event.key, event.value, self.projection)))
            except NotADocument as error:
                await self._dead_letter(event, error, 1, started)
        documents = latest_per_id([document for _, document in parsed])
        if not documents:
            return
        spans = self._spans([event for event, _ in parsed])
        try:
            rejections, attempts = await self._write(documents)
        except BatchAbandoned:
            raise
        except Exception as error:  # not transient: the whole batch cannot be written
            log.exception("%s: a batch of %d cannot be written", self.projection.name, len(events))
            for event, _ in parsed:
                await self._dead_letter(event, error, 1, started)
            return
        finally:
            for span in spans:
                span.end()
        PROJECTED.labels(self.projection.name, "written").inc(len(documents) - len(rejections))
        if rejections:
            refused = {rejection.id: rejection.reason for rejection in rejections}
            PROJECTED.labels(self.projection.name, "rejected").inc(len(rejections))
            for event, document in parsed:
                if document.id in refused:
                    rejected = RejectedByStore(refused[document.id])
                    await self._dead_letter(event, rejected, attempts, started)

    async def _write(self, documents: list[Document]) -> tuple[list[Any], int]:
        """Write ``documents``, retrying what may pass for as long as it takes; returns the
        store's rejections and the attempts it took. A permanent error is raised; a rebalance
        or a stop that begins while the sink waits raises BatchAbandoned."""
        policy = self.app.settings.retry_policy
        attempts = 0

        async def attempt() -> list[Any]:
            nonlocal attempts
            attempts += 1
            if not self.prepared:
                await self.breaker.call(self.store.prepare)
                self.prepared = True
            rejections: list[Any] = await self.breaker.call(lambda: self.store.write(documents))
            return rejections

        def retrying(failed: FailedAttempt) -> None:
            RETRIED.labels(self.projection.name).inc()
            if failed.attempts >= policy.max_attempts:
                self.app.held_topics.add(self.topic)
            if failed.attempts == policy.max_attempts or failed.attempts % 50 == 0:
                log.warning(
                    "%s: the store is not taking writes (%d attempts, still trying): %s",
                    self.projection.name,
                    failed.attempts,
                    failed.error,
                )

        try:
            rejections = await retry(
                attempt,
                policy,
                transient=is_transient,
                forever=True,  # past max_attempts the topic is held, and the sink goes on
                interrupted=self._interrupting,
                on_retry=retrying,
                poll=REBALANCE_CHECK,
            )
        except RetryInterrupted as interruption:
            raise BatchAbandoned(self.projection.name) from interruption
        self.app.held_topics.discard(self.topic)
        return rejections, attempts

    def _interrupting(self) -> bool:
        """Whether a rebalance or a stop is under way (either waits for the batches in
        progress)."""
        return bool(self.app.rebalancing or self.app.should_stop)

    def _still_interrupted(self) -> bool:
        """Whether the rebalance or stop that made the sink give a batch up is still under way."""
        if self.gave_up and not self._interrupting():
            self.gave_up = False
        return self.gave_up

    async def _dead_letter(
        self, event: EventT[Any], error: Exception, attempts: int, first: float
    ) -> None:
        DEAD_LETTERED.labels(self.projection.name, type(error).__name__).inc()
        log.error("%s: dead-lettering a document: %s", self.projection.name, error)
        failure = Failure(error, attempts, first, time.time(), self.projection.name)
        await dead_letter(self.app, event.message, failure)

    def _spans(self, events: Sequence[EventT[Any]]) -> list[Any]:
        """A span per traced document, child of the span that sent it, ended after the write."""
        if not tracing.enabled():
            return []
        spans = []
        for event in events:
            parent = tracing.extract(event.message.headers)
            if parent is None:
                continue
            spans.append(
                tracing.tracer().start_span(
                    f"{self.projection.name} write",
                    context=parent,
                    attributes={
                        "messaging.destination.name": event.message.topic,
                        "messaging.kafka.partition": event.message.partition,
                        "messaging.kafka.offset": event.message.offset,
                        "orderflow.key": str(event.key),
                    },
                )
            )
        return spans

"""The outbox relay: publishes PostgreSQL outbox rows to Kafka, at least once, in order.

Every worker runs one. A relay claims a batch of unpublished rows with
``FOR UPDATE SKIP LOCKED`` (so relays never publish the same row at once), produces them,
waits for the broker to acknowledge all of them, and only then marks them published and
commits. A relay that dies after producing but before committing leaves the rows unpublished;
they are produced again, and consumers drop the repeats by event id.

Order per aggregate: a row is claimable only if no earlier row of its aggregate is still
unpublished, so two relays can never publish an order's commands out of order.

It wakes on ``NOTIFY orderflow_outbox`` (sent by the intake's transaction at commit), polls
every second in case a notification was missed, backs off (the retry policy's full jitter)
while Kafka or PostgreSQL is down, and prunes rows published longer ago than the retention.

A row whose topic is missing from a reachable cluster waits (a topic may still be being
created); one whose topic stays missing for TOPIC_GRACE seconds can never be published and is
set aside (``failed_at``, ``last_error``) instead of failing every batch it is in, so one bad
row never stops the others. It still holds back the later rows of its own aggregate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from opentelemetry.trace import SpanKind

from orderflow.db import CONNECTION_ERRORS, Database, DatabaseUnavailable
from orderflow.intake import NOTIFY_CHANNEL
from orderflow.observability import tracing
from orderflow.resilience.retry import FailedAttempt, retry
from orderflow.settings import Settings

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
TOPIC_GRACE = 30.0
PRUNE_INTERVAL = 60.0
RETRIED_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    DatabaseUnavailable,
    *CONNECTION_ERRORS,
)

CLAIM = """
SELECT id, topic, key, payload, headers
FROM outbox o
WHERE published_at IS NULL
  AND failed_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM outbox earlier
      WHERE earlier.aggregate_id = o.aggregate_id
        AND earlier.published_at IS NULL
        AND earlier.id < o.id)
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

MARK_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"

SET_ASIDE = "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE id = $1"

RETRY_FAILED = "UPDATE outbox SET failed_at = NULL, last_error = NULL WHERE failed_at IS NOT NULL"

PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at < now() - make_interval(secs => $1)
    LIMIT 10000)
"""

PRUNE_KEYS = "DELETE FROM idempotency_keys WHERE expires_at < now()"

LAG = """
SELECT count(*) FILTER (WHERE failed_at IS NULL) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE failed_at IS NULL)),
                0)::float AS oldest_seconds,
       count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed
FROM outbox WHERE published_at IS NULL
"""


def _worth_retrying(error: BaseException) -> bool:
    """Any Kafka error (not only the retriable ones) and PostgreSQL being away."""
    return isinstance(error, RETRIED_ERRORS)


class OutboxRelay:
    def __init__(
        self, settings: Settings, database: Database, *, topic_grace: float = TOPIC_GRACE
    ) -> None:
        self.settings = settings
        self.database = database
        self.topic_grace = topic_grace
        self.wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_prune = 0.0
        self._topics: set[str] = set()
        self._missing_since: dict[str, float] = {}

    async def run(self) -> None:
        policy = self.settings.retry_policy
        try:
            while True:
                # Kafka or PostgreSQL away: drop the connections, back off (full jitter) and
                # try the cycle again, for as long as it takes. Anything else ends the relay.
                published = await retry(
                    self._cycle,
                    policy,
                    transient=_worth_retrying,
                    forever=True,
                    on_retry=self._after_failure,
                )
                if published < self.settings.outbox_batch_size:
                    await self._sleep()
        finally:
            await self._drop_connections()

    async def _cycle(self) -> int:
        await self._ensure_listening()
        published = await self.publish_batch()
        await self._maybe_prune()
        return published

    async def _after_failure(self, failed: FailedAttempt) -> None:
        log.warning("outbox relay: %s; retrying in %.1fs", failed.error, failed.delay)
        await self._drop_connections()

    async def publish_batch(self) -> int:
        """Claim, produce and mark one batch; returns how many rows it published."""
        producer = await self._ensure_producer()
        pool = await self.database.pool()
        timeout = self.settings.database_timeout
        async with pool.acquire(timeout=timeout) as connection, connection.transaction():
            rows = await connection.fetch(CLAIM, self.settings.outbox_batch_size)
            if not rows:
                return 0
            known = await self._existing_topics({row["topic"] for row in rows})
            publishable = [row for row in rows if row["topic"] in known]
            for row in rows:
                missing_for = self._missing_for(row["topic"], known)
                if missing_for >= self.topic_grace:
                    error = f"topic {row['topic']} does not exist"
                    log.error("outbox relay: row %d set aside: %s", row["id"], error)
                    await connection.execute(SET_ASIDE, row["id"], error)
            sent = [await self._send(producer, row) for row in publishable]
            await asyncio.gather(*sent)  # every record acknowledged by the broker
            await connection.execute(MARK_PUBLISHED, [row["id"] for row in publishable])
        return len(rows)

    async def _send(self, producer: AIOKafkaProducer, row: Any) -> Any:
        """Produce one row; with tracing on, as a child of the request that wrote it."""
        headers: dict[str, str] = orjson.loads(row["headers"])
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": row["topic"],
            "orderflow.order_id": row["key"],
            "orderflow.outbox_id": row["id"],
        }
        with tracing.span(
            "outbox publish",
            kind=SpanKind.PRODUCER,
            parent=tracing.extract(headers),
            attributes=attributes,
        ):
            headers.update(tracing.inject())
            return await producer.send(
                row["topic"],
                bytes(row["payload"]),
                key=row["key"].encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )

    async def _existing_topics(self, wanted: set[str]) -> set[str]:
        """Which of ``wanted`` exist; asks the cluster only about names not seen before."""
        if not wanted <= self._topics:
            producer = await self._ensure_producer()
            cluster = await producer.client.fetch_all_metadata()
            if not cluster.brokers():
                raise KafkaConnectionError("no broker answered the metadata request")
            self._topics = set(cluster.topics())
        return wanted & self._topics

    def _missing_for(self, topic: str, known: set[str]) -> float:
        """Seconds ``topic`` has been missing from the cluster (0 if it exists)."""
        if topic in known:
            self._missing_since.pop(topic, None)
            return 0.0
        return time.monotonic() - self._missing_since.setdefault(topic, time.monotonic())

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                linger_ms=2,
                request_timeout_ms=15_000,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.is_closed():
            connection = await asyncpg.connect(
                self.settings.database_url, timeout=self.settings.database_timeout
            )
            await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            self._listener = connection

    def _notified(self, *args: Any) -> None:
        self.wake.set()

    async def _sleep(self) -> None:
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
        # event is set, and under load NOTIFYs set it all the time, so a stopping worker's
        # cancellation of the relay was lost and the graceful stop hung until SIGKILL.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_INTERVAL):
                await self.wake.wait()
        self.wake.clear()

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = time.monotonic()
        pool = await self.database.pool()
        async with pool.acquire(timeout=self.settings.database_timeout) as connection:
            pruned = await connection.execute(PRUNE, self.settings.outbox_retention)
            expired = await connection.execute(PRUNE_KEYS)
        log.info("outbox relay: pruned %s published rows, %s expired keys", pruned, expired)

    async def _drop_connections(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close(timeout=1)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


async def outbox_lag(database: Database) -> dict[str, float]:
    """Rows waiting to be published and the age of the oldest, in seconds."""
    pool = await database.pool()
    try:
        async with pool.acquire(timeout=database.settings.database_timeout) as connection:
            row = await connection.fetchrow(LAG)
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"PostgreSQL is unavailable: {error}") from error
    return {
        "pending": row["pending"],
        "oldest_pending_seconds": row["oldest_seconds"],
        "failed": row["failed"],
    }


async def retry_failed(database: Database) -> int:
    """Put the rows set aside back in line (after their topic was created); returns how many."""
    pool = await database.pool()
    async with pool.acquire(timeout=database.settings.database_timeout) as connection:
        status: str = await connection.execute(RETRY_FAILED)
    return int(status.split()[-1])


def register(app: OrderflowApp) -> None:
    """Every worker relays the outbox; SKIP LOCKED keeps them out of each other's way."""

    async def relay_outbox() -> None:
        await OutboxRelay(app.settings, app.database).run()

    app.task(relay_outbox)

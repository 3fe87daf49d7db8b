"""The outbox relay: publishes PostgreSQL outbox rows to Kafka, at least once, in order.

Every worker runs one. A relay claims a batch of unpublished rows with
``FOR UPDATE SKIP LOCKED`` (so relays never publish the same row at once), produces them,
waits for the broker to acknowledge all of them, and only then marks them published and
commits. A relay that dies after producing but before committing leaves the rows unpublished;
they are produced again, and consumers drop the repeats by event id.

Order per aggregate: a row is claimable only if no earlier row of its aggregate is still
unpublished, so two relays can never publish an order's commands out of order.

It wakes on ``NOTIFY orderflow_outbox`` (sent by the intake's transaction at commit), polls
every second in case a notification was missed, backs off while Kafka or PostgreSQL is down,
and prunes rows published longer ago than the retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from orderflow.app import app
from orderflow.db import CONNECTION_ERRORS, Database, DatabaseUnavailable
from orderflow.intake import NOTIFY_CHANNEL
from orderflow.settings import Settings

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
PRUNE_INTERVAL = 60.0
MAX_BACKOFF = 5.0

CLAIM = """
SELECT id, topic, key, payload, headers
FROM outbox o
WHERE published_at IS NULL
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

PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at < now() - make_interval(secs => $1)
    LIMIT 10000)
"""

PRUNE_KEYS = "DELETE FROM idempotency_keys WHERE expires_at < now()"

LAG = """
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float AS oldest_seconds
FROM outbox WHERE published_at IS NULL
"""


class OutboxRelay:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_prune = 0.0

    async def run(self) -> None:
        backoff = 0.1
        try:
            while True:
                try:
                    await self._ensure_listening()
                    published = await self.publish_batch()
                    await self._maybe_prune()
                    backoff = 0.1
                except (KafkaError, DatabaseUnavailable, *CONNECTION_ERRORS) as error:
                    log.warning("outbox relay: %s; retrying in %.1fs", error, backoff)
                    await self._drop_connections()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if published < self.settings.outbox_batch_size:
                    await self._sleep()
        finally:
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
            sent = [
                await producer.send(
                    row["topic"],
                    bytes(row["payload"]),
                    key=row["key"].encode(),
                    headers=[(k, v.encode()) for k, v in orjson.loads(row["headers"]).items()],
                )
                for row in rows
            ]
            await asyncio.gather(*sent)  # every record acknowledged by the broker
            await connection.execute(MARK_PUBLISHED, [row["id"] for row in rows])
        return len(rows)

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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=POLL_INTERVAL)
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
    return {"pending": row["pending"], "oldest_pending_seconds": row["oldest_seconds"]}


@app.task  # type: ignore[untyped-decorator]
async def relay_outbox() -> None:
    """Every worker relays the outbox; SKIP LOCKED keeps them out of each other's way."""
    await OutboxRelay(app.settings, app.database).run()

"""Reads ``orders.events`` and stamps each followed order with its outcome and when it was read.

The watcher is a plain aiokafka consumer with no group: it is assigned every partition of the
topic and positioned at the end offsets *before* any load is sent, so it sees every event of
the run and nothing older. Events read before their order's 202 arrived (the saga can be that
fast) are kept for a while and applied when the order is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orderflow.errors import OrderflowError
from orderflow.loadgen.plan import Kind
from orderflow.loadgen.stats import CANCELLED, CONFIRMED, OrderRecord

# The topic and record names of orderflow.topics and orderflow.schemas (a unit test checks
# that they agree); the load generator reads them without importing the Faust app.
ORDERS_EVENTS = "orders.events"
ORDER_PLACED = "orderflow.OrderPlaced"
ORDER_CONFIRMED = "orderflow.OrderConfirmed"
ORDER_REJECTED = "orderflow.OrderRejected"
ORDER_CANCELLED = "orderflow.OrderCancelled"
EARLY_EVENTS_KEPT = 100_000  # events of orders not (yet) followed, oldest dropped first


class WatcherError(OrderflowError):
    """The events topic cannot be read."""


def outcome_of(event: dict[str, Any]) -> str | None:
    """``confirmed``, ``cancelled``, ``rejected:REASON``, ``placed``, or None for anything else."""
    metadata = event.get("__faust")
    namespace = metadata.get("ns") if isinstance(metadata, dict) else None
    if namespace == ORDER_CONFIRMED:
        return CONFIRMED
    if namespace == ORDER_CANCELLED:
        return CANCELLED
    if namespace == ORDER_REJECTED:
        return f"rejected:{event.get('reason')}"
    if namespace == ORDER_PLACED:
        return "placed"
    return None


def ends(record: OrderRecord, outcome: str) -> bool:
    """Whether ``outcome`` ends ``record`` for the load generator: an order to be cancelled
    goes on past its confirmation (the cancellation voids it) unless it could not be cancelled."""
    if outcome == "placed":
        return False
    return not (outcome == CONFIRMED and record.kind is Kind.CANCEL and record.cancel_error is None)


class OutcomeWatcher:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        on_placed: Callable[[OrderRecord], None] | None = None,
    ) -> None:
        self.topic = topic
        self.on_placed = on_placed
        self.events_read = 0
        self._bootstrap_servers = bootstrap_servers
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            max_poll_records=5000,
        )
        self._followed: dict[str, OrderRecord] = {}
        self._early: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()
        self._confirmed: dict[str, float] = {}  # orders to cancel that were confirmed first
        self._task: asyncio.Task[None] | None = None

    async def start(self, within: float = 30.0) -> None:
        """Assign every partition, seek to the end offsets and wait until the consumer is
        positioned there; then read in the background."""
        async with asyncio.timeout(within):
            partitions = await self._partitions()
        await self._consumer.start()
        try:
            async with asyncio.timeout(within):
                assigned = [TopicPartition(self.topic, p) for p in partitions]
                self._consumer.assign(assigned)
                await self._consumer.seek_to_end(*assigned)
                for partition in assigned:
                    await self._consumer.position(partition)
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._read(), name="loadgen-outcome-watcher")

    async def _partitions(self) -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap_servers)
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        found = [t for t in described if t["topic"] == self.topic and t["error_code"] == 0]
        if not found or not found[0]["partitions"]:
            raise WatcherError(
                f"topic {self.topic} does not exist: are the workers running, with the same "
                "ORDERFLOW_TOPIC_PREFIX?"
            )
        return sorted(partition["partition"] for partition in found[0]["partitions"])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def follow(self, record: OrderRecord) -> None:
        """Watch for the outcome of an accepted order (``record.order_id`` is set)."""
        assert record.order_id is not None
        self._followed[record.order_id] = record
        for outcome, at in self._early.pop(record.order_id, ()):
            self._apply(record, outcome, at)

    def cancel_failed(self, record: OrderRecord) -> None:
        """The order could not be cancelled (``record.cancel_error`` is set): its
        confirmation, if it was read, is its outcome."""
        assert record.order_id is not None
        confirmed_at = self._confirmed.pop(record.order_id, None)
        if confirmed_at is not None:
            self._apply(record, CONFIRMED, confirmed_at)

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for messages in batches.values():
                for message in messages:
                    self.events_read += 1
                    self._handle(message.value, now)

    def _handle(self, value: bytes | None, at: float) -> None:
        try:
            event = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        outcome, order_id = outcome_of(event), event.get("order_id")
        if outcome is None or not isinstance(order_id, str):
            return
        record = self._followed.get(order_id)
        if record is not None:
            self._apply(record, outcome, at)
            return
        self._early.setdefault(order_id, []).append((outcome, at))
        while len(self._early) > EARLY_EVENTS_KEPT:
            self._early.popitem(last=False)

    def _apply(self, record: OrderRecord, outcome: str, at: float) -> None:
        if record.outcome is not None:
            return  # a later event (a redelivered copy, a cancellation after a rejection)
        if outcome == "placed":
            if record.kind is Kind.CANCEL and self.on_placed is not None:
                self.on_placed(record)
            return
        if ends(record, outcome):
            record.outcome, record.outcome_at = outcome, at
            self._followed.pop(record.order_id or "", None)
        elif outcome == CONFIRMED:
            self._confirmed[record.order_id or ""] = at

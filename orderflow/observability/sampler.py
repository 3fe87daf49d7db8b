"""Gauges sampled every few seconds on each worker: consumer lag, table sizes, outbox lag."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orderflow.db import DatabaseUnavailable
from orderflow.observability import metrics
from orderflow.sinks.outbox_relay import outbox_lag

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 10.0


def estimated_keys(table: Any) -> int:
    """Keys of a table on this worker: RocksDB's estimate per partition, or the exact count."""
    store = table.data
    databases = getattr(store, "_dbs", None)
    if databases is None:
        return len(store)
    return sum(
        int(db.property_int_value("rocksdb.estimate-num-keys") or 0) for db in databases.values()
    )


class Sampler:
    def __init__(self, app: OrderflowApp) -> None:
        self.app = app
        self._lag_series: set[tuple[str, str]] = set()

    async def consumer_lag(self) -> None:
        consumer = self.app.consumer
        series: set[tuple[str, str]] = set()
        for tp in consumer.assignment():
            if tp.topic.endswith("-changelog"):
                continue
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is None or highwater is None:  # nothing fetched from it yet
                continue
            labels = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(max(highwater - position, 0))
            series.add(labels)
        for gone in self._lag_series - series:  # partitions this worker no longer has
            metrics.CONSUMER_LAG.remove(*gone)
        self._lag_series = series

    def table_sizes(self) -> None:
        for name, typed in self.app.data.by_name.items():
            metrics.TABLE_KEYS.labels(name).set(estimated_keys(typed.table))

    async def outbox(self) -> None:
        try:
            lag = await outbox_lag(self.app.database)
        except DatabaseUnavailable:
            return
        metrics.OUTBOX_PENDING.set(lag["pending"])
        metrics.OUTBOX_OLDEST.set(lag["oldest_pending_seconds"])
        metrics.OUTBOX_FAILED.set(lag["failed"])


async def sample_gauges(app: OrderflowApp) -> None:
    """Sample the gauges every SAMPLE_INTERVAL seconds, outside rebalances, until the worker
    stops."""
    sampler = Sampler(app)
    while True:
        await app.sleep(SAMPLE_INTERVAL)
        # app.sleep returns at once when the worker stops: sampling then would fail at once
        # (the consumer's thread is gone) without ever yielding, and the stop would hang.
        if app.should_stop:
            return
        if app.rebalancing:
            continue
        try:
            await sampler.consumer_lag()
            sampler.table_sizes()
            await sampler.outbox()
        except Exception:
            log.exception("metrics: sampling failed")


def register(app: OrderflowApp) -> None:
    async def sample() -> None:
        await sample_gauges(app)

    app.task(sample)

"""Gauges sampled every few seconds on each worker: consumer lag, table sizes, outbox lag."""

from __future__ import annotations

import logging
from typing import Any

from orderflow.app import app
from orderflow.db import DatabaseUnavailable
from orderflow.observability import metrics
from orderflow.sinks.outbox_relay import outbox_lag
from orderflow.tables import ALL_TABLES

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
    def __init__(self) -> None:
        self._lag_series: set[tuple[str, str]] = set()

    async def consumer_lag(self) -> None:
        consumer = app.consumer
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

    @staticmethod
    def table_sizes() -> None:
        for name, typed in ALL_TABLES.items():
            metrics.TABLE_KEYS.labels(name).set(estimated_keys(typed.table))

    @staticmethod
    async def outbox() -> None:
        try:
            lag = await outbox_lag(app.database)
        except DatabaseUnavailable:
            return
        metrics.OUTBOX_PENDING.set(lag["pending"])
        metrics.OUTBOX_OLDEST.set(lag["oldest_pending_seconds"])
        metrics.OUTBOX_FAILED.set(lag["failed"])


@app.task  # type: ignore[untyped-decorator]
async def sample_gauges() -> None:
    sampler = Sampler()
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

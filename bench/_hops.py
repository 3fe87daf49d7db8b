"""Where an order's time goes between its 202 and its outcome, hop by hop.

Every Kafka record carries the time its producer created it. Reading the saga's topics for the
orders of one window gives, per confirmed order, when the outbox relay published PlaceOrder,
when the saga asked for stock, when the inventory answered, when the saga asked for payment,
when the payments agent answered and when the saga confirmed; the load generator knows when
the 202 arrived and when it read the outcome. Each hop's median and p99 follow (in ms).
Producer clocks and the load generator's are the same machine's clock.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orderflow.loadgen.stats import OrderRecord, percentile

# (topic, record) in the order a confirmed one-line order passes them
STEPS = (
    ("orders.commands", "PlaceOrder"),
    ("inventory.commands", "ReserveStock"),
    ("saga.replies", "StockReserved"),
    ("payments.commands", "AuthorizePayment"),
    ("saga.replies", "PaymentAuthorized"),
    ("orders.events", "OrderConfirmed"),
)
HOPS = (
    ("202 -> PlaceOrder published (outbox relay)", "accepted", "PlaceOrder"),
    ("PlaceOrder -> ReserveStock (saga)", "PlaceOrder", "ReserveStock"),
    ("ReserveStock -> StockReserved (inventory)", "ReserveStock", "StockReserved"),
    ("StockReserved -> AuthorizePayment (saga)", "StockReserved", "AuthorizePayment"),
    ("AuthorizePayment -> PaymentAuthorized (payments)", "AuthorizePayment", "PaymentAuthorized"),
    ("PaymentAuthorized -> OrderConfirmed (saga)", "PaymentAuthorized", "OrderConfirmed"),
    ("OrderConfirmed -> read by the load generator", "OrderConfirmed", "read"),
)


async def _read(bootstrap: str, topics: Iterable[str], since_ms: int) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(set(topics)))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        for tp in partitions:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
        records = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def hops(
    bootstrap: str, prefix: str, records: list[OrderRecord], since_ms: int
) -> dict[str, Any]:
    """Median and p99 of each hop over the confirmed normal orders among ``records``."""
    wall = time.time() - time.monotonic()  # monotonic -> Unix seconds
    followed = {
        r.order_id: r
        for r in records
        if r.order_id and r.outcome == "confirmed" and r.kind.value == "normal"
    }
    stamps: dict[str, dict[str, float]] = defaultdict(dict)
    for message in await _read(bootstrap, {prefix + topic for topic, _ in STEPS}, since_ms):
        value = orjson.loads(message.value or b"{}")
        name = str(value.get("__faust", {}).get("ns", "")).removeprefix("orderflow.")
        order_id = value.get("order_id")
        if order_id in followed:
            stamps[order_id].setdefault(name, message.timestamp / 1000)
    deltas: dict[str, list[float]] = defaultdict(list)
    for order_id, record in followed.items():
        seen = stamps.get(order_id, {})
        assert record.accepted is not None
        assert record.outcome_at is not None
        seen["accepted"] = record.accepted + wall
        seen["read"] = record.outcome_at + wall
        for label, start, end in HOPS:
            if start in seen and end in seen:
                deltas[label].append(seen[end] - seen[start])
    result = {}
    for label, _, _ in HOPS:
        values = sorted(deltas[label])
        if values:
            result[label] = {
                "orders": len(values),
                "p50_ms": round(percentile(values, 50) * 1000, 1),
                "p99_ms": round(percentile(values, 99) * 1000, 1),
            }
    return result

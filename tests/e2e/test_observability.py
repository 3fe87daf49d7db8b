"""Metrics and traces of real workers.

- After a run of orders through two workers, the counters scraped from each worker's /metrics
  (parsed as Prometheus exposition) add up to what happened.
- With tracing on (spans written as JSON lines), one order is one trace: the HTTP request, the
  outbox publish, every agent hop and the read-model writes, linked parent to child.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orderflow.observability.tracing import dump
from tests.support import auth
from tests.support.webhook import WebhookReceiver
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers

SKU = "SKU-OBS"


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
async def workers(
    kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path, webhook: WebhookReceiver
) -> AsyncIterator[list[WorkerProcess]]:
    name = f"{run_id}-obs"
    with PaymentSimulator(tmp_path / "sim.log") as simulator:
        processes = platform_workers(
            2,
            tmp_path,
            name=name,
            kafka=kafka_bootstrap,
            partitions=4,
            database_url=database_url,
            gateway=simulator.url,
            trace_file=str(tmp_path / "spans.jsonl"),  # both workers append whole lines
            notification_webhook_url=webhook.url,
        )
        for process in processes:
            process.env["OTEL_TRACES_EXPORTER"] = "jsonl"
        for process in processes:
            process.start()
        try:
            for process in processes:
                await asyncio.to_thread(process.wait_ready)
            yield processes
        finally:
            for process in processes:
                await asyncio.to_thread(process.stop)


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json(content_type=None)


def order(token: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "customer_id": "c-obs",
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": quantity, "unit_price": 1200}],
        "payment": {"token": token},
    }


def scrape_total(texts: list[str], name: str, **labels: str) -> float:
    """The sum over workers of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
    return total


async def test_counters_match_what_happened_and_one_order_is_one_trace(
    workers: list[WorkerProcess], webhook: WebhookReceiver, tmp_path: Path
) -> None:
    first, second = workers
    api = f"{first.url}/api/v1"
    async with aiohttp.ClientSession(
        headers=auth.admin(), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        await post(session, f"{api}/inventory/{SKU}/adjustments", {"delta": 20, "reason": "obs"})
        for _ in range(300):
            if (await get(session, f"{api}/inventory/{SKU}")).get("on_hand") == 20:
                break
            await asyncio.sleep(0.1)
        placed = []
        for token, quantity in (
            [("tok_visa", 1)] * 6 + [("tok_decline", 1)] * 3 + [("tok_visa", 50)] * 2
        ):
            placed.append(
                (await post(session, f"{api}/orders", order(token, quantity)))["order_id"]
            )
        outcomes: Counter[tuple[str, str | None]] = Counter()
        notified: set[str] = set()  # the id of the notification each outcome calls for
        for order_id in placed:
            view = await get(session, f"{second.url}/api/v1/orders/{order_id}?wait=30")
            outcomes[(view["status"], view["reason"])] += 1
            notified.add(f"{order_id}/order_{view['status'].lower()}")
        assert outcomes == {
            ("CONFIRMED", None): 6,
            ("REJECTED", "payment_declined"): 3,
            ("REJECTED", "out_of_stock"): 2,
        }
        # One notification per outcome reached the webhook, keyed by its id.
        for _ in range(300):
            if len(webhook.received) >= len(notified):
                break
            await asyncio.sleep(0.1)
        assert sorted(key or "" for key, _ in webhook.received) == sorted(notified)
        assert [body["id"] for _, body in webhook.received] == [k for k, _ in webhook.received]
        assert {body["customer_id"] for _, body in webhook.received} == {"c-obs"}
        history = await get(session, f"{first.url}/api/v1/orders/{placed[0]}/notifications")
        assert [(n["kind"], n["channel"], n["status"]) for n in history["notifications"]] == [
            ("order_confirmed", "webhook", "sent")
        ]

        texts = []
        for worker in workers:
            async with session.get(f"{worker.url}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                texts.append(await response.text())

    assert scrape_total(texts, "orderflow_orders_placed_total") == len(placed)
    assert scrape_total(texts, "orderflow_orders_confirmed_total") == 6
    assert scrape_total(texts, "orderflow_orders_rejected_total", reason="payment_declined") == 3
    assert scrape_total(texts, "orderflow_orders_rejected_total", reason="out_of_stock") == 2
    assert scrape_total(texts, "orderflow_saga_duration_seconds_count", outcome="confirmed") == 6
    assert scrape_total(texts, "orderflow_payments_total", outcome="authorized") == 6
    assert scrape_total(texts, "orderflow_payments_total", outcome="declined") == 3
    assert scrape_total(texts, "orderflow_notifications_sent_total", kind="order_confirmed") == 6
    assert scrape_total(texts, "orderflow_notifications_sent_total", kind="order_rejected") == 5
    assert scrape_total(texts, "orderflow_stock_reservations_total", outcome="reserved") >= 9
    assert scrape_total(texts, "orderflow_stock_reservations_total", outcome="rejected") == 2
    assert scrape_total(
        texts, "orderflow_http_requests_total", route="/api/v1/orders", method="POST", status="202"
    ) == len(placed)
    assert scrape_total(texts, "orderflow_events_processed_total", handler="saga") > 0

    # A graceful stop lets the sinks finish with their store clients still open: nothing is
    # dead-lettered on the way out (nothing in this run is poison).
    for worker in workers:
        await asyncio.to_thread(worker.stop)
        log = worker.log_path.read_text(errors="replace")
        assert "dead-lettering" not in log, worker.log_tail(40)

    # Traces: every span of the first confirmed order's trace, from both workers' files.
    spans = dump(str(tmp_path / "spans.jsonl"))
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        by_trace[span["context"]["trace_id"]].append(span)
    order_id = placed[0]
    [trace] = [
        t
        for t in by_trace.values()
        if any(s["attributes"].get("orderflow.order_id") == order_id for s in t)
    ]
    names = Counter(s["name"] for s in trace)
    assert names["HTTP POST /api/v1/orders"] == 1
    assert names["outbox publish"] == 1
    assert names["saga process"] >= 3  # PlaceOrder, StockReserved, PaymentAuthorized
    for hop in ("inventory process", "payments process", "order-documents process"):
        assert names[hop] >= 1, names
    ids = {s["context"]["span_id"] for s in trace}
    roots = [s for s in trace if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["HTTP POST /api/v1/orders"]
    assert all(s["parent_id"] in ids for s in trace if s["parent_id"] is not None)
    saga_spans = [s for s in trace if s["name"] == "saga process"]
    assert all(s["attributes"]["messaging.destination.name"].endswith(("orders.commands",
               "saga.replies")) for s in saga_spans)  # fmt: skip
    assert all("messaging.kafka.offset" in s["attributes"] for s in saga_spans)

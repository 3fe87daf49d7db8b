"""What tracing costs per message, off and on, against the same per-message work.

The work is what a saga step does in-process: decode a PlaceOrder from bytes, run the pure
saga decision, and encode the commands it issues. "off" adds orderflow's tracing calls with
tracing disabled (the default), "on" adds them with an SDK tracer provider whose exporter
drops the spans (so the cost measured is creating, propagating and ending spans, not I/O).
Each variant runs in the same process, interleaved, best of several rounds.

    .venv/bin/python bench/tracing_overhead.py [--messages 20000] [--rounds 5]

Writes bench/results/tracing_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from orderflow import schemas
from orderflow.domain import saga
from orderflow.domain.orders import Line, NewOrder
from orderflow.observability import tracing
from orderflow.schemas.codec import decode

RESULTS = Path(__file__).parent / "results" / "tracing_overhead.json"


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def payloads(count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    records = []
    for n in range(count):
        order_id = f"order-{n}"
        record = schemas.PlaceOrder(
            **schemas.envelope(order_id),
            order_id=order_id,
            customer_id="c-1",
            currency="USD",
            lines=[schemas.OrderLine(sku="SKU-1", quantity=1, unit_price=1999)],
            payment_token="tok_visa",
        )
        records.append((record.dumps(), {}))
    return records


def work(raw: bytes) -> None:
    message = decode(raw)
    assert isinstance(message, schemas.PlaceOrder)
    lines = tuple(Line(li.sku, li.quantity, li.unit_price) for li in message.lines)
    order = NewOrder(message.customer_id, message.currency, lines, message.payment_token)
    decision = saga.handle(None, message.event_id, saga.Start(message.order_id, order), 0.0, 15.0)
    for output in decision.outputs:
        if isinstance(output, saga.Reserve):
            schemas.ReserveStock(
                **schemas.caused_by(message), order_id=message.order_id, sku=output.sku,
                quantity=output.quantity,
            ).dumps()  # fmt: skip


def traced(raw: bytes, headers: dict[str, bytes]) -> None:
    """What orderflow.resilience.handling and orderflow.topics.publish add to each message."""
    if not tracing.enabled():
        work(raw)
        tracing.inject_bytes()  # publish() asks for headers on every send
        return
    with tracing.span("saga process", kind=SpanKind.CONSUMER, parent=tracing.extract(headers)):
        work(raw)
        tracing.inject_bytes()


def run(
    label: str, batch: list[tuple[bytes, dict[str, bytes]]], step: Callable[..., None]
) -> float:
    started = time.perf_counter()
    for raw, headers in batch:
        step(raw, headers)
    return len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    batch = payloads(args.messages)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DropSpans()))
    trace.set_tracer_provider(provider)

    best = {"baseline": 0.0, "tracing_off": 0.0, "tracing_on": 0.0}
    for _ in range(args.rounds):
        tracing._STATE["enabled"] = False
        best["baseline"] = max(best["baseline"], run("baseline", batch, lambda r, h: work(r)))
        best["tracing_off"] = max(best["tracing_off"], run("off", batch, traced))
        tracing._STATE["enabled"] = True
        best["tracing_on"] = max(best["tracing_on"], run("on", batch, traced))
    tracing._STATE["enabled"] = False

    report = {
        "messages_per_round": args.messages,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "messages_per_second": {k: round(v) for k, v in best.items()},
        "ratio_to_baseline": {k: round(v / best["baseline"], 3) for k, v in best.items()},
        "microseconds_per_message_added": {
            "tracing_off": round(1e6 / best["tracing_off"] - 1e6 / best["baseline"], 2),
            "tracing_on": round(1e6 / best["tracing_on"] - 1e6 / best["baseline"], 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

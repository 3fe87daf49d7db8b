"""JSON log lines, secret masking, and trace context carried through message headers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from orderflow.observability import tracing
from orderflow.observability.logs import CORRELATION_ID, JsonFormatter, redact


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("orderflow.test", logging.WARNING, __file__, 1, message, args, None)


def test_a_log_line_is_one_json_object_with_the_order_id() -> None:
    token = CORRELATION_ID.set("order-42")
    try:
        line = JsonFormatter().format(record("reserved %d of %s", 2, "SKU-1"))
    finally:
        CORRELATION_ID.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "reserved 2 of SKU-1"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "orderflow.test"
    assert entry["correlation_id"] == "order-42"
    assert "trace_id" not in entry  # no span is current


def test_exceptions_are_kept_on_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failure = record("failed")
        failure.exc_info = sys.exc_info()
    line = JsonFormatter().format(failure)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token tok_visa_4242 declined", "token tok_*** declined"),
        ('{"payment_token":"card-123","x":1}', '{"payment_token":"***","x":1}'),
        ("postgresql://orderflow:s3cret@db:5432/o", "postgresql://orderflow:***@db:5432/o"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_secrets_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter behind the process's tracer provider (set once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracing._STATE["enabled"] = True
    yield exporter
    tracing._STATE["enabled"] = False


def test_a_context_injected_in_headers_continues_the_trace_downstream(
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    with tracing.span("HTTP POST /api/v1/orders", kind=SpanKind.SERVER):
        row_headers = tracing.inject()  # stored with the outbox row
    with tracing.span("outbox publish", parent=tracing.extract(row_headers)):
        kafka_headers = list(tracing.inject_bytes().items())  # sent with the record
    with tracing.span("saga process", parent=tracing.extract(kafka_headers)):
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    http, publish, saga = (
        finished["HTTP POST /api/v1/orders"],
        finished["outbox publish"],
        finished["saga process"],
    )
    assert "traceparent" in row_headers
    assert http.context.trace_id == publish.context.trace_id == saga.context.trace_id
    assert publish.parent is not None
    assert publish.parent.span_id == http.context.span_id
    assert saga.parent is not None
    assert saga.parent.span_id == publish.context.span_id


def test_with_tracing_off_nothing_is_created_or_injected() -> None:
    enabled = tracing._STATE["enabled"]
    tracing._STATE["enabled"] = False
    try:
        with tracing.span("anything") as current:
            assert current is None
            assert tracing.inject() == {}
        assert (
            tracing.extract({"traceparent": b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"}) is None
        )
    finally:
        tracing._STATE["enabled"] = enabled


async def test_the_gauge_sampler_ends_when_the_worker_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Once the worker stops, app.sleep returns at once and the consumer's thread is gone: a
    # sampler that went on would fail at once, over and over, and the stop would hang (a
    # scale-out test saw a graceful stop end in SIGKILL that way).
    from orderflow.app import create_app
    from orderflow.observability import sampler
    from orderflow.settings import Settings
    from tests.support.auth import TEST_JWT_SECRET

    app = create_app(Settings(store="memory://", jwt_secret=TEST_JWT_SECRET))

    sampled: list[str] = []

    class KeptSampling(BaseException):  # not an Exception: the sampler's handler lets it out
        pass

    async def consumer_lag(self: sampler.Sampler) -> None:
        sampled.append("consumer_lag")
        if len(sampled) > 3:
            raise KeptSampling
        raise RuntimeError("Event loop is closed")

    monkeypatch.setattr(sampler.Sampler, "consumer_lag", consumer_lag)
    app._stopped.set()
    try:
        await asyncio.wait_for(sampler.sample_gauges(app), timeout=5)
    except KeptSampling:
        pytest.fail("the sampler went on sampling after the worker stopped")
    finally:
        app._stopped.clear()
    assert sampled == []

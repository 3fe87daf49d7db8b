"""OpenTelemetry tracing: one trace per order, from the HTTP request through the outbox and
every agent hop, carried between processes in W3C ``traceparent`` Kafka headers.

Off unless configured, and then nothing is created per message: ``enabled()`` is checked
before any span is made. Configure with the standard variables (``OTEL_TRACES_EXPORTER=otlp``
and ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ...) or write spans as JSON lines
to a file with ``OTEL_TRACES_EXPORTER=jsonl`` and ``ORDERFLOW_TRACE_FILE``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind

_STATE: dict[str, Any] = {"enabled": False}
TRACER_NAME = "orderflow"


class JsonLinesSpanExporter(SpanExporter):
    """Writes each finished span as one JSON object per line (for files and tests)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            for span in spans:
                out.write(span.to_json(indent=None) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def configure(trace_file: str = "", environ: Mapping[str, str] | None = None) -> bool:
    """Install a tracer provider if the environment asks for one; returns whether it did."""
    env = os.environ if environ is None else environ
    if enabled():
        return True
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none") or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "orderflow")})
    provider = TracerProvider(resource=resource)
    if exporter_name == "jsonl":
        if not trace_file:
            raise ValueError("OTEL_TRACES_EXPORTER=jsonl needs ORDERFLOW_TRACE_FILE")
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    elif exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter_name!r}: expected otlp, jsonl or none")
    trace.set_tracer_provider(provider)
    _STATE["enabled"] = True
    return True


def enabled() -> bool:
    return bool(_STATE["enabled"])


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def inject() -> dict[str, str]:
    """The current trace context as headers (empty when tracing is off)."""
    carrier: dict[str, str] = {}
    if enabled():
        propagate.inject(carrier)
    return carrier


def extract(headers: Any) -> otel_context.Context | None:
    """A trace context from message or row headers (a mapping or (key, value) pairs; values
    may be bytes)."""
    if not enabled() or not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {
        key: value.decode() if isinstance(value, bytes) else str(value) for key, value in pairs
    }
    return propagate.extract(carrier)


def inject_bytes() -> dict[str, bytes]:
    """The current trace context as Kafka headers."""
    return {key: value.encode() for key, value in inject().items()}


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span when tracing is on, nothing at all when it is off."""
    if not enabled():
        yield None
        return
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def dump(path: str) -> list[dict[str, Any]]:
    """Read the spans a JsonLinesSpanExporter wrote."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]

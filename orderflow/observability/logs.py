"""Structured JSON logs: one object per line with the order id, trace id and span id.

The order (correlation) id is set for the duration of each message's handling; the trace and
span ids come from the current span when tracing is on. Secrets never reach the output: card
tokens and passwords in URLs are masked, whatever logged them.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from opentelemetry import trace

CORRELATION_ID: ContextVar[str | None] = ContextVar("orderflow_correlation_id", default=None)

_SECRETS = (
    (re.compile(r"\btok_[A-Za-z0-9_]+"), "tok_***"),  # payment tokens
    (re.compile(r"(\"(?:payment_)?token\"\s*:\s*\")[^\"]*(\")"), r"\1***\2"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),  # passwords in URLs
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "pid": record.process,
        }
        correlation_id = CORRELATION_ID.get()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class RedactingFormatter(logging.Formatter):
    """The human-readable format, with the same masking of secrets."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_config(level: str, log_format: str, chatty: tuple[str, ...]) -> dict[str, object]:
    """Merged by mode (Faust's service library) into its own logging configuration."""
    formatter: dict[str, object]
    if log_format == "json":
        formatter = {"()": JsonFormatter}
    else:
        formatter = {
            "()": RedactingFormatter,
            "format": "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s",
        }
    return {
        "version": 1,
        "merge": True,
        # mode names its file formatter "default" and its stream formatter "colored".
        "formatters": {"default": formatter, "colored": formatter},
        "loggers": {name: {"level": level} for name in chatty},
    }

"""Prometheus metrics of a worker, exposed on its ``/metrics``.

Each worker process has its own registry content and is scraped separately; nothing is shared
between processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from orderflow.resilience.breaker import BreakerState, CircuitBreaker

BREAKER_STATE = Gauge(
    "orderflow_circuit_breaker_state",
    "State of a circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["breaker"],
)
BREAKER_OPENED = Counter(
    "orderflow_circuit_breaker_opened_total",
    "Times a circuit breaker opened.",
    ["breaker"],
)
DEAD_LETTERED = Counter(
    "orderflow_dead_lettered_total",
    "Messages sent to a dead-letter topic, by handler and error type.",
    ["handler", "error_type"],
)
RETRIED = Counter(
    "orderflow_handler_retries_total",
    "Attempts of a handler that failed with a transient error and were retried.",
    ["handler"],
)

_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def observe_breaker(breaker: CircuitBreaker) -> None:
    """on_change hook of every breaker: keeps its gauge (and open count) current."""
    state = breaker.state
    BREAKER_STATE.labels(breaker.name).set(_STATE_VALUE[state])
    if state is BreakerState.OPEN:
        BREAKER_OPENED.labels(breaker.name).inc()

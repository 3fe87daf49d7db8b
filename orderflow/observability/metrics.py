"""Prometheus metrics of a worker, exposed on its ``/metrics``.

Each worker process has its own metrics and is scraped separately; nothing is shared between
processes. Names follow Prometheus conventions: a unit suffix, ``_total`` on counters, and
labels of bounded cardinality (per-sku stock is capped at SKU_SERIES_LIMIT skus per worker).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from orderflow.resilience.breaker import BreakerState, CircuitBreaker

SKU_SERIES_LIMIT = 1000

# Business.
ORDERS_PLACED = Counter("orderflow_orders_placed_total", "Orders whose saga started.")
ORDERS_CONFIRMED = Counter("orderflow_orders_confirmed_total", "Orders confirmed.")
ORDERS_REJECTED = Counter("orderflow_orders_rejected_total", "Orders rejected.", ["reason"])
ORDERS_CANCELLED = Counter("orderflow_orders_cancelled_total", "Orders cancelled.")
ORDER_VALUE = Histogram(
    "orderflow_order_value_minor_units",
    "Order totals in minor units of their currency.",
    ["currency"],
    buckets=(500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000),
)
SAGA_DURATION = Histogram(
    "orderflow_saga_duration_seconds",
    "From the start of a saga to its outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
SAGAS_IN_FLIGHT = Gauge(
    "orderflow_sagas_in_flight", "Sagas waiting for a reply, on this worker's partitions."
)
RESERVATIONS = Counter(
    "orderflow_stock_reservations_total", "Reservation requests by outcome.", ["outcome"]
)
RELEASES = Counter("orderflow_stock_releases_total", "Reservations released.")
STOCK_ON_HAND = Gauge("orderflow_stock_on_hand", "On-hand stock of a sku.", ["sku"])
PAYMENTS = Counter("orderflow_payments_total", "Authorization requests by outcome.", ["outcome"])
NOTIFICATIONS_SENT = Counter(
    "orderflow_notifications_sent_total", "Customer notifications delivered.", ["kind", "channel"]
)
NOTIFICATIONS_SKIPPED = Counter(
    "orderflow_notifications_skipped_total",
    "Customer notifications recorded but not sent: no channel is configured.",
    ["kind"],
)

# Technical.
EVENTS_PROCESSED = Counter(
    "orderflow_events_processed_total", "Messages handled, by handler.", ["handler"]
)
PROCESSING_TIME = Histogram(
    "orderflow_event_processing_seconds",
    "Time to handle one message, retries included.",
    ["handler"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
RETRIED = Counter(
    "orderflow_handler_retries_total",
    "Attempts of a handler that failed with a transient error and were retried.",
    ["handler"],
)
DEAD_LETTERED = Counter(
    "orderflow_dead_lettered_total",
    "Messages sent to a dead-letter topic, by handler and error type.",
    ["handler", "error_type"],
)
CONSUMER_LAG = Gauge(
    "orderflow_consumer_lag_messages",
    "Messages of a partition this worker consumes that it has not fetched yet.",
    ["topic", "partition"],
)
TABLE_KEYS = Gauge("orderflow_table_keys", "Estimated keys per table on this worker.", ["table"])
OUTBOX_PENDING = Gauge("orderflow_outbox_pending_rows", "Outbox rows waiting to be published.")
OUTBOX_OLDEST = Gauge(
    "orderflow_outbox_oldest_pending_seconds", "Age of the oldest outbox row not published."
)
OUTBOX_FAILED = Gauge(
    "orderflow_outbox_failed_rows", "Outbox rows set aside because their topic is missing."
)
HTTP_REQUESTS = Counter(
    "orderflow_http_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 35),
)
PROJECTED = Counter(
    "orderflow_projection_documents_total",
    "Documents a sink sent to its store, by projection and result (written, rejected).",
    ["projection", "result"],
)
PROJECTION_BATCH_TIME = Histogram(
    "orderflow_projection_batch_seconds",
    "Time to write one batch of documents to a store, retries included.",
    ["projection"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEARCH_DURATION = Histogram(
    "orderflow_search_duration_seconds",
    "Time Elasticsearch took to answer a search, by index (alias).",
    ["index"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
READ_SIDE_CHECKED = Counter(
    "orderflow_read_side_checked",
    "Documents reconciliation compared with a store, by projection.",
    ["projection"],
)
READ_SIDE_BEHIND = Gauge(
    "orderflow_read_side_behind_documents",
    "Documents a store lacked or held at an older version than the tables, in this worker's "
    "last complete reconciliation pass, by projection.",
    ["projection"],
)
READ_SIDE_REPUBLISHED = Counter(
    "orderflow_read_side_republished",
    "Documents published again because a store was behind the tables, by projection.",
    ["projection"],
)
BREAKER_STATE = Gauge(
    "orderflow_circuit_breaker_state",
    "State of a circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["breaker"],
)
BREAKER_OPENED = Counter(
    "orderflow_circuit_breaker_opened_total", "Times a circuit breaker opened.", ["breaker"]
)

_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def observe_breaker(breaker: CircuitBreaker) -> None:
    """on_change hook of every breaker: keeps its gauge (and open count) current."""
    state = breaker.state
    BREAKER_STATE.labels(breaker.name).set(_STATE_VALUE[state])
    if state is BreakerState.OPEN:
        BREAKER_OPENED.labels(breaker.name).inc()


class StockGauges:
    """Per-sku on-hand gauges, for at most SKU_SERIES_LIMIT skus (the first ones seen)."""

    def __init__(self, limit: int = SKU_SERIES_LIMIT) -> None:
        self.limit = limit
        self._skus: set[str] = set()

    def set(self, sku: str, on_hand: int) -> None:
        if sku in self._skus or len(self._skus) < self.limit:
            self._skus.add(sku)
            STOCK_ON_HAND.labels(sku).set(on_hand)


STOCK_GAUGES = StockGauges()

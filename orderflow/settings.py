"""Typed settings, read once from ``ORDERFLOW_*`` environment variables and validated at start.

Every bad variable is reported at once, each with its name, the value given and the expected
form, so that a worker with a wrong configuration stops before it connects to anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orderflow.errors import OrderflowError
from orderflow.resilience.policy import RetryPolicy

PREFIX = "ORDERFLOW_"
# The app id of a deployment without a topic prefix (and the end of the one derived from it).
DEFAULT_APP_ID = "orderflow"


class ProcessingGuarantee(StrEnum):
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


class AuthMode(StrEnum):
    JWT = "jwt"
    # Every request acts as an administrator: for development on one's own machine only.
    DISABLED = "disabled"


class SettingsError(OrderflowError):
    """One or more ``ORDERFLOW_*`` variables are invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid settings:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


# Parsers take the raw string and return the typed value, or raise ValueError whose message is
# the expected form ("an integer from 1 to 65535").


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


def _broker_url(raw: str) -> str:
    """``kafka://host:port``, more brokers after ``;`` or ``,``; bare host:port is accepted."""
    expected = "kafka://HOST:PORT, with more brokers separated by ';' (e.g. kafka://127.0.0.1:9092)"
    hosts = []
    for part in re.split(r"[;,]", raw.strip()):
        address = part.strip().removeprefix("kafka://")
        match = _HOST_PORT.match(address)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError(expected)
        hosts.append(address)
    return ";".join(f"kafka://{host}" for host in hosts)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in schemes or not parts.hostname or port == -1:
            raise ValueError(f"a URL like {schemes[0]}://HOST:PORT/...")
        return value

    return parse


def _optional(parse: Callable[[str], str]) -> Callable[[str], str]:
    """``parse``, or the empty string for an empty value."""

    def optional(raw: str) -> str:
        return parse(raw) if raw.strip() else ""

    return optional


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ValueError(f"a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _store(raw: str) -> str:
    value = raw.strip()
    if value not in ("rocksdb://", "memory://"):
        raise ValueError("rocksdb:// (changelog-backed RocksDB, for workers) or memory:// (tests)")
    return value


def _identifier(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", value):
        raise ValueError("letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def _prefix(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", value):
        raise ValueError("empty, or letters, digits, '.', '_' or '-'")
    return value


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("a directory path")
    return Path(raw.strip()).expanduser()


def _host(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9.\-:]+", value):
        raise ValueError("a host name or IP address")
    return value


def _optional_host(raw: str) -> str:
    return _host(raw) if raw.strip() else ""


def _secret(raw: str) -> str:
    value = raw.strip()
    if value and len(value.encode()) < 32:
        raise ValueError("empty, or a secret of at least 32 bytes (e.g. openssl rand -hex 32)")
    return value


def _jwks_url(raw: str) -> str:
    value = raw.strip()
    if value.startswith("file://") and len(value) > len("file://"):
        return value
    return _optional(_url("https", "http"))(value)


def _claim(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > 200:
        raise ValueError("a non-empty string of at most 200 characters")
    return value


@dataclass(frozen=True, slots=True)
class Quota:
    """A token bucket: ``requests`` at most in a burst, refilled at requests/window per second."""

    requests: int
    window: float

    @property
    def per_second(self) -> float:
        return self.requests / self.window

    def __str__(self) -> str:
        return f"{self.requests}/{self.window:g}"


def _quota(raw: str) -> Quota | None:
    value = raw.strip().lower()
    if value == "off":
        return None
    match = re.fullmatch(r"(\d{1,7})/(\d{1,5}(?:\.\d+)?)", value)
    if not match or int(match[1]) < 1 or not 0 < float(match[2]) <= 86400:
        raise ValueError("REQUESTS/SECONDS (e.g. 60/60: bursts of 60, one more per second) or off")
    return Quota(int(match[1]), float(match[2]))


def _log_level(raw: str) -> str:
    return _choice("debug", "info", "warning", "error")(raw).upper()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration of one orderflow process."""

    # The consumer group and the prefix of the tables' changelog topics. From the environment,
    # it defaults to the topic prefix followed by "orderflow" (see from_env): the prefix alone
    # then keeps two deployments on one Kafka apart.
    app_id: str = DEFAULT_APP_ID
    broker_url: str = "kafka://127.0.0.1:9092"
    topic_prefix: str = ""
    topic_partitions: int = 8
    topic_replication_factor: int = 1
    # min.insync.replicas of the topics the workers create (0: the broker's default). With the
    # producers' acks=all, a write needs that many replicas, so one broker can be lost.
    topic_min_insync_replicas: int = 0
    store: str = "rocksdb://"
    data_dir: Path = Path("var/data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    advertised_host: str = ""
    processing_guarantee: ProcessingGuarantee = ProcessingGuarantee.AT_LEAST_ONCE
    # How long the group waits for a silent worker before moving its partitions elsewhere.
    session_timeout: float = 10.0
    # How long the producer holds a record to send it with others (seconds): fewer, larger
    # produce requests for a little latency per hop.
    producer_linger: float = 0.005
    # A fetch is answered once it has this many bytes, or after consumer_fetch_wait seconds:
    # fewer, larger fetches for at most that wait per hop. 1 byte: answered at the first record.
    consumer_fetch_min_bytes: int = 1
    consumer_fetch_wait: float = 1.5
    # Copies of each table partition kept warm on another worker (Faust's standby replicas):
    # a failover then replays only the last records of the changelog, at the price of every
    # worker reading the others' changelogs all the time.
    table_standby_replicas: int = 1
    # A worker whose streams stay suspended this long after a rebalance exits to be restarted
    # (0 turns the watchdog off); see orderflow.views.health.
    stall_timeout: float = 90.0
    database_url: str = "postgresql://orderflow:orderflow@127.0.0.1:5432/orderflow"
    database_pool_size: int = 10
    # Seconds to wait for a connection or a query before answering 503.
    database_timeout: float = 5.0
    # Apply pending schema migrations when a worker starts (else: orderflow db migrate).
    database_migrate: bool = False
    # How long an Idempotency-Key is remembered.
    idempotency_key_ttl: float = 24 * 3600.0
    # New orders are refused (503, Retry-After) while accepted ones wait longer than this to be
    # published, or while this worker's saga-path messages wait longer than this to be handled
    # (0: no such check); see orderflow.intake.admission.
    intake_max_outbox_age: float = 5.0
    intake_max_saga_delay: float = 10.0
    # How long published outbox rows are kept before they are pruned.
    outbox_retention: float = 24 * 3600.0
    outbox_batch_size: int = 500
    elasticsearch_url: str = "http://127.0.0.1:9200"
    mongodb_url: str = "mongodb://127.0.0.1:27017/orderflow"
    payment_gateway_url: str = "http://127.0.0.1:7070"
    # Per call to the payment gateway; a saga's payment step waits longer than this.
    payment_timeout: float = 2.0
    # Where customer notifications are POSTed; empty: they are recorded as skipped.
    notification_webhook_url: str = ""
    # Per notification delivery.
    notification_timeout: float = 2.0
    # How long a saga waits for the replies of one step before it asks again, and how many times
    # it asks before it compensates (reason timeout): the step's deadline is their product,
    # longer than a worker's failover (session timeout, recovery), so a failover rejects nothing.
    saga_step_timeout: float = 15.0
    saga_step_attempts: int = 3
    # Reconciliation of the read side with the tables (orderflow.projections.reconcile): every
    # interval (0: off) a page of each read-model table is compared with the stores; documents
    # changed in the last ``grace`` seconds are left to the sinks.
    reconcile_interval: float = 10.0
    reconcile_page: int = 200
    reconcile_grace: float = 60.0
    # Retries of a message whose handling failed for a transient reason, before its DLQ.
    retry_max_attempts: int = 5
    retry_base_delay: float = 0.1
    retry_max_delay: float = 5.0
    # Circuit breakers (payment gateway): consecutive failures that open one, how long it
    # stays open, and how many trial calls a half-open breaker lets through.
    breaker_failure_threshold: int = 5
    breaker_open_seconds: float = 10.0
    breaker_half_open_trials: int = 1
    # How many times a saga asks for a payment the gateway could not take, before rejecting.
    payment_max_attempts: int = 30
    log_level: str = "INFO"
    log_format: str = "json"
    # Spans as JSON lines, with OTEL_TRACES_EXPORTER=jsonl (OTLP uses the OTEL_* variables).
    trace_file: str = ""
    # Bearer tokens on /api/v1 (see orderflow.auth): "jwt", or "disabled" for development.
    auth: AuthMode = AuthMode.JWT
    # HS256 key (local use and tests) and/or where an identity provider publishes its RS256 /
    # ES256 keys (https://... or file://...); at least one of them unless auth is disabled.
    jwt_secret: str = field(default="", repr=False)
    jwt_jwks_url: str = ""
    jwt_issuer: str = "orderflow"
    jwt_audience: str = "orderflow"
    # Clock skew tolerated on exp and nbf.
    jwt_leeway: float = 30.0
    # The key workers sign forwarded requests with (default: derived from the JWT secret;
    # required with a JWKS URL alone).
    forwarding_secret: str = field(default="", repr=False)
    # Token buckets per client (token subject, else address) and per worker, by route class.
    rate_limit_public: Quota | None = Quota(300, 60)
    rate_limit_reads: Quota | None = Quota(600, 60)
    rate_limit_writes: Quota | None = Quota(120, 60)
    rate_limit_admin: Quota | None = Quota(120, 60)
    # Buckets kept per worker at most (idle ones are dropped first).
    rate_limit_clients: int = 10_000
    # Request bodies larger than this are refused (413).
    max_body_bytes: int = 256 * 1024

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_max_attempts, self.retry_base_delay, self.retry_max_delay)

    @property
    def canonical_url(self) -> str:
        """The URL other workers use to reach this one's web views (table_route redirects)."""
        host = self.advertised_host or self.web_host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.web_port}"

    @property
    def bootstrap_servers(self) -> str:
        """The brokers as Kafka clients want them: host:port,host:port."""
        return ",".join(url.removeprefix("kafka://") for url in self.broker_url.split(";"))

    def topic(self, name: str) -> str:
        """The full name of one of orderflow's topics, with this deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``ORDERFLOW_*`` variable; SettingsError lists all problems."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        known = {PREFIX + f.name.upper() for f in fields(cls)}
        for f in fields(cls):
            variable = PREFIX + f.name.upper()
            raw = env.get(variable)
            if raw is None:
                continue
            try:
                values[f.name] = _PARSERS[f.name](raw)
            except ValueError as expected:
                problems.append(f"{variable}={raw!r}: expected {expected}")
        unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in known)
        problems.extend(
            f"{name}: unknown setting (known: {', '.join(sorted(known))})"
            for name in unknown
            if name not in _NOT_SETTINGS
        )
        if "app_id" not in values and values.get("topic_prefix"):
            # Faust names the consumer group and the changelog topics after the app id, not
            # the topic prefix: two deployments with different prefixes and one app id would
            # share a group and restore each other's tables.
            derived = values["topic_prefix"] + DEFAULT_APP_ID
            try:
                values["app_id"] = _identifier(derived)
            except ValueError as expected:
                problems.append(
                    f"{PREFIX}TOPIC_PREFIX={env[PREFIX + 'TOPIC_PREFIX']!r}: the app id "
                    f"derived from it ({derived!r}) is not valid: expected {expected}; set "
                    f"{PREFIX}APP_ID"
                )
        replicas = values.get("topic_replication_factor", 1)
        if values.get("topic_min_insync_replicas", 0) > replicas:
            problems.append(
                f"{PREFIX}TOPIC_MIN_INSYNC_REPLICAS={values['topic_min_insync_replicas']}: "
                f"expected at most {PREFIX}TOPIC_REPLICATION_FACTOR ({replicas}), or no write "
                "could ever be acknowledged"
            )
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, to hand to a child process."""
        return {PREFIX + f.name.upper(): _env_value(getattr(self, f.name)) for f in fields(self)}


def _env_value(value: Any) -> str:
    return "off" if value is None else str(value)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "app_id": _identifier,
    "broker_url": _broker_url,
    "topic_prefix": _prefix,
    "topic_partitions": _integer(1, 1024),
    "topic_replication_factor": _integer(1, 16),
    "topic_min_insync_replicas": _integer(0, 16),
    "store": _store,
    "data_dir": _path,
    "web_host": _host,
    "web_port": _integer(1, 65535),
    "advertised_host": _optional_host,
    "processing_guarantee": lambda raw: ProcessingGuarantee(
        _choice(*(g.value for g in ProcessingGuarantee))(raw)
    ),
    "session_timeout": _seconds(6, 300),
    "producer_linger": _seconds(0, 1),
    "consumer_fetch_min_bytes": _integer(1, 16 * 1024 * 1024),
    "consumer_fetch_wait": _seconds(0.001, 30),
    "table_standby_replicas": _integer(0, 16),
    "stall_timeout": lambda raw: 0.0 if raw.strip() in ("0", "0.0") else _seconds(10, 3600)(raw),
    "database_url": _url("postgresql", "postgres"),
    "database_pool_size": _integer(1, 500),
    "database_timeout": _seconds(0.1, 300),
    "database_migrate": _boolean,
    "idempotency_key_ttl": _seconds(60, 30 * 24 * 3600),
    "intake_max_outbox_age": _seconds(0, 3600),
    "intake_max_saga_delay": _seconds(0, 3600),
    "outbox_retention": _seconds(60, 365 * 24 * 3600),
    "outbox_batch_size": _integer(1, 10_000),
    "elasticsearch_url": _url("http", "https"),
    "mongodb_url": _url("mongodb", "mongodb+srv"),
    "payment_gateway_url": _url("http", "https"),
    "payment_timeout": _seconds(0.05, 60),
    "notification_webhook_url": _optional(_url("http", "https")),
    "notification_timeout": _seconds(0.05, 60),
    "saga_step_timeout": _seconds(1, 3600),
    "saga_step_attempts": _integer(1, 100),
    "reconcile_interval": _seconds(0, 86400),
    "reconcile_page": _integer(1, 10_000),
    "reconcile_grace": _seconds(0, 86400),
    "retry_max_attempts": _integer(1, 100),
    "retry_base_delay": _seconds(0.001, 60),
    "retry_max_delay": _seconds(0.01, 600),
    "breaker_failure_threshold": _integer(1, 1000),
    "breaker_open_seconds": _seconds(0.1, 3600),
    "breaker_half_open_trials": _integer(1, 100),
    "payment_max_attempts": _integer(1, 1000),
    "log_level": _log_level,
    "log_format": _choice("json", "text"),
    "trace_file": lambda raw: raw.strip(),
    "auth": lambda raw: AuthMode(_choice(*(m.value for m in AuthMode))(raw)),
    "jwt_secret": _secret,
    "jwt_jwks_url": _jwks_url,
    "jwt_issuer": _claim,
    "jwt_audience": _claim,
    "jwt_leeway": _seconds(0, 300),
    "forwarding_secret": _secret,
    "rate_limit_public": _quota,
    "rate_limit_reads": _quota,
    "rate_limit_writes": _quota,
    "rate_limit_admin": _quota,
    "rate_limit_clients": _integer(100, 10_000_000),
    "max_body_bytes": _integer(1024, 64 * 1024 * 1024),
}

# Variables with the prefix that configure the local infrastructure scripts (deploy/local) and
# the test harness, not an orderflow process.
_NOT_SETTINGS = frozenset(
    PREFIX + name
    for name in (
        "CACHE_DIR",
        "STATE_DIR",
        "INFRA_HOST",
        "KEEP_INFRA",
        "CHAOS_SECONDS",
        "KAFKA_VERSION",
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "KAFKA_HEAP",
        "POSTGRES_PORT",
        "ELASTICSEARCH_VERSION",
        "ELASTICSEARCH_PORT",
        "ELASTICSEARCH_TRANSPORT_PORT",
        "ELASTICSEARCH_HEAP",
        "MONGODB_PORT",
    )
)

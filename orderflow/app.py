"""The Faust application, its configuration, and the composition root that wires it.

``faust -A orderflow.app worker`` (or ``orderflow worker``) loads ``orderflow.app:app``. The app
is built on first access from :class:`~orderflow.settings.Settings`, so importing this module
neither reads the environment nor connects to anything. :func:`create_app` is the one place
where the platform is put together: it declares the topics and tables on a new app, then asks
each bounded context to register its agents, tasks and views on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast

import faust
from faust.tables.manager import TableManager
from faust.types import ConsumerT, ProducerT, TopicT

from orderflow import faust_options, faust_surface, topics
from orderflow.agents import catalog, inventory, notifications, payments, read_models, saga
from orderflow.auth.guard import Guard
from orderflow.consumer import WorkerConsumer
from orderflow.db import Database
from orderflow.intake import admission
from orderflow.intake.admission import Admission
from orderflow.observability import http as http_metrics
from orderflow.observability import logs, sampler, startup_logs, tracing
from orderflow.observability.metrics import observe_breaker
from orderflow.projections import reconcile
from orderflow.projections.read_side import ReadSide
from orderflow.resilience import dlq, local_state, produce_ledger, producer_buffer
from orderflow.resilience.breaker import BreakerConfig, CircuitBreaker
from orderflow.resilience.data_dir_lock import DataDirLock
from orderflow.resilience.in_flight import InFlight
from orderflow.settings import ProcessingGuarantee, Settings
from orderflow.sinks import outbox_relay, projections
from orderflow.tables import Tables
from orderflow.topics import Bus
from orderflow.views import health
from orderflow.views import register as register_views

# The bounded contexts, each with its register(app): what they declare on the app.
CONTEXTS = (
    saga,
    inventory,
    payments,
    catalog,
    read_models,
    notifications,
    projections,
    reconcile,
    outbox_relay,
    sampler,
    admission,
)

# How long a rebalance or a stop waits for the events in progress before it commits without them
# (well within Kubernetes' grace period of 60 s and the group's rebalance timeout).
IN_FLIGHT_WAIT = 20.0

# How often the consumer refreshes topic metadata even when nothing failed (see create_app).
METADATA_MAX_AGE_MS = 10_000

# Libraries that log per message at DEBUG: their level is pinned to the process's level so that
# no library default makes the hot path build records that no handler prints.
_CHATTY_LOGGERS = ("faust", "mode", "aiokafka", "aiohttp.access")


class OrderflowApp(faust.App):
    """A faust.App that carries the Settings it was built from, and the clients built from them.

    ``bus`` and ``data`` are the platform's topics and tables (Faust's own ``topics`` and
    ``tables`` are its conductor and table manager); :func:`create_app` declares them.
    """

    bus: Bus
    data: Tables
    # Bearer tokens, rate limits and forwarding marks of the API (set with the views).
    guard: Guard

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(settings.app_id, **options)
        self.settings = settings
        self.database = Database(settings)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.read_side = ReadSide(settings)
        # Topics whose consumption a sink holds back on purpose while its store is down (the
        # stall watchdog leaves them alone: waiting is the back-pressure).
        self.held_topics: set[str] = set()
        # Events the agents and sinks are working on (what a rebalance waits for).
        self.in_flight = InFlight()
        # Whether new orders are let in, from the saga's backlog (orderflow.intake.admission).
        self.admission = Admission(settings.intake_max_outbox_age, settings.intake_max_saga_delay)
        # Taken when the worker starts: one worker per data directory.
        self.data_dir_lock: DataDirLock | None = None
        # Lowers the errors a fresh start is expected to log, until the first recovery.
        self.startup_noise = startup_logs.StartupNoise()

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker called ``name``, made on first use from the settings."""
        if name not in self.breakers:
            config = BreakerConfig(
                self.settings.breaker_failure_threshold,
                self.settings.breaker_open_seconds,
                self.settings.breaker_half_open_trials,
            )
            self.breakers[name] = CircuitBreaker(name, config, on_change=observe_breaker)
            observe_breaker(self.breakers[name])
        return self.breakers[name]

    def waited(self, handler: str, seconds: float) -> None:
        """A message of ``handler`` was handled ``seconds`` after it was produced: the saga's
        waits decide whether the intake takes new orders (orderflow.intake.admission)."""
        if handler in admission.SAGA_PATH:
            self.admission.waited(seconds)

    def dead_letter_topic(self, origin: str) -> TopicT:
        """The DLQ twin of the topic called ``origin`` (its full name)."""
        return dlq.dead_letter_topic(self, origin, self.settings.topic_partitions)

    async def _consumer_wait_empty(self, consumer: ConsumerT, logger: Any) -> None:
        """Before partitions are revoked: wait for the events in progress, then commit.

        Faust's own wait counts unacknowledged deliveries and can wait forever when two agents
        share a topic (see :mod:`orderflow.resilience.in_flight`). Only acknowledged offsets are
        committed, so an event dropped from a queue is delivered again after the rebalance.
        """
        logger.info("Wait for events in progress (%d)...", len(self.in_flight))
        try:
            async with asyncio.timeout(IN_FLIGHT_WAIT):
                await self.in_flight.wait_idle()
        except TimeoutError:
            # One stuck event must not turn a rebalance or a graceful stop into a SIGKILL (and
            # a full rebuild of the tables): what is still in progress was not acknowledged, so
            # it is not committed, and it is delivered again.
            logger.warning(
                "%d events still in progress after %.0f s; committing what was acknowledged",
                len(self.in_flight),
                IN_FLIGHT_WAIT,
            )
        await consumer.commit(start_new_transaction=False)

    def _new_consumer(self) -> ConsumerT:
        # Faust's seek after a rebalance can commit past messages no stream processed. What
        # Faust's own _new_consumer and Transport.create_consumer pass, with the class swapped.
        return WorkerConsumer(
            self.settings,
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
        )

    def _new_producer(self) -> ProducerT:
        # Faust's buffer can let a commit get ahead of table writes still in it.
        producer = super()._new_producer()
        producer_buffer.install(producer)
        produce_ledger.install(producer)  # a failed record ends the worker before a commit
        if self.settings.topic_min_insync_replicas:
            _set_min_insync_replicas(producer, self.settings.topic_min_insync_replicas)
        return producer

    async def on_first_start(self) -> None:
        # Before the Kafka clients start (orderflow.observability.startup_logs).
        startup_logs.install(self.startup_noise)
        self.add_future(self._end_startup_noise())
        # `faust worker --web-port/--web-host/--web-bind` changed the configuration after the
        # app was made from the settings: the settings follow (orderflow.faust_options).
        self.settings = faust_options.with_worker_options(
            self.settings,
            data_dir=Path(self.conf.datadir),
            web_port=self.conf.web_port,
            web_bind=self.conf.web_bind,
            web_host=self.conf.web_host,
        )
        # Before anything touches the data directory: a second worker sharing it would discard
        # this one's tables (orderflow.resilience.data_dir_lock). Refused, the worker stops.
        self.data_dir_lock = DataDirLock(self.settings.data_dir)
        self.data_dir_lock.acquire(web=str(self.conf.canonical_url))
        # Before any table opens: local tables left by a run that did not stop cleanly may
        # hold writes that Kafka never got (see orderflow.resilience.local_state).
        local_state.claim(self.conf.datadir, self.conf.tabledir)
        await super().on_first_start()

    async def _end_startup_noise(self) -> None:
        """Start-up ends when the tables have been recovered once (or after its limit)."""
        try:
            async with asyncio.timeout(startup_logs.LIMIT):
                await cast(TableManager, self.tables).recovery.completed.wait()
        except TimeoutError:
            pass
        finally:
            startup_logs.remove(self.startup_noise)

    async def on_shutdown(self) -> None:
        # After the agents and tasks have stopped (on_stop runs before them): a sink or the
        # outbox relay still finishing a batch must not find its client closed, or a graceful
        # stop would dead-letter documents it was writing.
        await self.database.close()
        await self.read_side.close()
        await super().on_shutdown()
        # on_stop committed the offsets and flushed the producer; the tables match their
        # changelogs only if Kafka acknowledged every write (it cannot while unreachable).
        if self.crash_reason is None:
            undelivered = producer_buffer.undelivered(self.producer)
            if undelivered is None:
                local_state.mark_clean_stop(self.conf.datadir)
            else:
                logging.getLogger(__name__).warning(
                    "not every table write reached Kafka (%s): the local tables are left "
                    "unmarked, and the next start rebuilds them from the changelogs",
                    undelivered,
                )
        if self.data_dir_lock is not None:
            self.data_dir_lock.release()


def _set_min_insync_replicas(producer: ProducerT, replicas: int) -> None:
    """Every topic the app creates (its own, the tables' changelogs, repartition topics and
    dead-letter twins all go through the producer's create_topic) gets min.insync.replicas,
    unless the topic's own config says otherwise. Topics that exist already keep theirs."""
    create_topic = producer.create_topic

    async def create(
        topic: str,
        partitions: int,
        replication: int,
        *,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        config = {"min.insync.replicas": replicas, **(config or {})}
        await create_topic(topic, partitions, replication, config=config, **options)

    producer.create_topic = create  # type: ignore[method-assign]


def create_app(settings: Settings, *, platform: bool = True) -> OrderflowApp:
    """A configured app; with ``platform``, its topics, tables, agents, tasks and views too
    (without, only the health views: an app that declares its own)."""
    faust_surface.ensure_compatible()
    app = OrderflowApp(
        settings,
        broker=settings.broker_url,
        store=settings.store,
        datadir=str(settings.data_dir),
        processing_guarantee=settings.processing_guarantee.value,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # Topics are declared by the app with their partition counts; brokers must not
        # auto-create them with defaults.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        # A topic created moments before the group forms can be missing from the broker's
        # metadata answer; the assignor then skips it and the worker owns none of its
        # partitions until the consumer's next metadata refresh notices the topic and rejoins.
        # Kafka's default of five minutes would leave them unconsumed that long.
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 10),
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # Faust's name for the advertised host: `faust worker --web-port` builds the canonical
        # URL from it, so that option keeps the advertised host.
        web_host=faust_options.canonical_host(settings),
        canonical_url=settings.canonical_url,
        # Faust serves every table over HTTP by default; orderflow exposes its own views only.
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        origin="orderflow",
        # A worker must never take a whole partition's backlog into memory at once.
        stream_buffer_maxsize=4096,
        producer_linger=settings.producer_linger,
        table_standby_replicas=settings.table_standby_replicas,
        logging_config=logs.logging_config(
            settings.log_level, settings.log_format, _CHATTY_LOGGERS
        ),
    )
    health.install(app)
    http_metrics.install(app)
    tracing.configure(settings.trace_file)
    if platform:
        _register_platform(app)
    if settings.processing_guarantee is ProcessingGuarantee.EXACTLY_ONCE:
        logging.getLogger(__name__).warning(
            "processing_guarantee=exactly_once is not supported: faust-streaming 0.15.3 can "
            "lose table updates after a crash in this mode (docs/ARCHITECTURE.md); "
            "at_least_once with orderflow's idempotent handlers is the supported guarantee"
        )
    return app


def _register_platform(app: OrderflowApp) -> None:
    app.bus = Bus(app, app.settings)
    app.data = Tables(app, app.settings)
    topics.register(app, app.bus)
    for context in CONTEXTS:
        context.register(app)
    register_views(app)


@cache
def _platform_app() -> OrderflowApp:
    # `faust --datadir DIR` reaches the app as F_DATADIR, before the app exists.
    return create_app(faust_options.with_faust_datadir(Settings.from_env(), os.environ))


def __getattr__(name: str) -> OrderflowApp:
    # PEP 562: ``orderflow.app.app`` is created on first access, from the environment.
    if name == "app":
        return _platform_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

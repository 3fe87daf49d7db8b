"""Liveness, readiness, and the watchdog that ends a worker stuck after a rebalance.

``/healthz`` answers while the event loop runs. ``/readyz`` answers 200 once the worker can answer
requests: its web server is up and it has recovered its tables from their changelogs at least
once, so that a load balancer (or a Kubernetes readiness probe) sends no query to a worker
that has never caught up. A later rebalance does not make it unready: every worker pauses in
every rebalance, and a Service whose workers all left it at each scale step would have no
endpoint at all; a query for a key whose partition is moving is answered 503 on its own.
``/readyz?strict=1`` answers 200 only while nothing is moving: tables recovered, no rebalance or
recovery in progress, streams flowing (what a test waits for after starting a worker).

Faust can stay stuck after a rebalance: its recovery may wait for the consumer thread to seek
to the committed offsets while that thread waits for the next rebalance, or a partition it
owns may simply not be consumed, until another rebalance happens (both seen under the e2e
tests in CI). The watchdog ends such a worker, and the supervisor (Kubernetes, ``orderflow
run``) starts it again, when within one consumer generation either the streams stay suspended
outside table recovery, or an owned partition has messages waiting while its committed offset
does not move, for ``stall_timeout`` seconds. Crashing is safe: every handler is idempotent
and nothing is committed that was not processed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, cast

from faust.tables.manager import TableManager
from faust.types import AppT
from faust.web import Request, Response, View

log = logging.getLogger(__name__)

# The exit status of a worker that the stall watchdog ended (EX_SOFTWARE).
STALLED_EXIT_STATUS = 70


def readiness(app: AppT) -> dict[str, Any]:
    """The worker's readiness and the facts it rests on: ``serving`` (what ``/readyz`` answers)
    and ``ready`` (settled: what ``/readyz?strict=1`` answers)."""
    recovery = cast(TableManager, app.tables).recovery
    # Faust sets it when the first recovery completes and never clears it.
    recovered = recovery.completed.is_set()
    in_recovery = bool(app.in_recovery)
    rebalancing = bool(app.rebalancing)
    flowing = app.flow_control.is_active()
    settled = recovered and not in_recovery and not rebalancing and flowing
    return {
        "status": "ready" if settled else "rebalancing" if recovered else "starting",
        "serving": recovered,
        "ready": settled,
        "tables_recovered": recovered,
        "in_recovery": in_recovery,
        "rebalancing": rebalancing,
        "streams_flowing": flowing,
        "assigned_partitions": len(app.assignor.assigned_actives()),
        "changelog_records_remaining": recovery.active_remaining_total(),
        "breakers": {
            name: breaker.state.value for name, breaker in getattr(app, "breakers", {}).items()
        },
    }


def is_strict(query: Any) -> bool:
    """Whether a ``/readyz`` query asks for the settled state (``?strict=1``, ``?strict``)."""
    value = query.get("strict")
    return value is not None and value.strip().lower() not in ("0", "false", "no", "off")


def readyz(app: AppT, strict: bool) -> tuple[int, dict[str, Any]]:
    """``/readyz``'s status and body."""
    state = readiness(app)
    ok = state["ready"] if strict else state["serving"]
    return (200 if ok else 503), state


class Healthz(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "alive"})


class Readyz(View):
    async def get(self, request: Request) -> Response:
        status, state = readyz(self.app, is_strict(request.query))
        return self.json(state, status=status)


class StallWatchdog:
    """Ends the process when one consumer generation stays suspended outside recovery."""

    def __init__(self, app: AppT, timeout: float, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.timeout = timeout
        self.clock = clock
        self._suspended: tuple[int, float] | None = None  # (generation, since)
        # partition -> (generation, committed offset, since when it has not moved)
        self._idle: dict[Any, tuple[int, int | None, float]] = {}
        # Under exactly_once a transaction marker ends each partition, so an idle partition's
        # committed offset stays one below its end: offsets say nothing there.
        settings = getattr(app, "settings", None)
        self.watch_offsets = getattr(settings, "processing_guarantee", "") != "exactly_once"

    def suspended_for(self) -> float:
        """Seconds the current generation has kept the streams suspended (0 when it has not)."""
        app = self.app
        suspended = bool(app.rebalancing) or not app.flow_control.is_active()
        if not suspended or app.in_recovery or not app.consumer.assignment():
            self._suspended = None
            return 0.0
        generation = app.consumer_generation_id
        if self._suspended is None or self._suspended[0] != generation:
            self._suspended = (generation, self.clock())
        return self.clock() - self._suspended[1]

    def stuck_partitions(self) -> dict[Any, float]:
        """Owned partitions with messages waiting whose committed offset has not moved, and
        for how many seconds (within the current generation)."""
        app = self.app
        if app.rebalancing or app.in_recovery or not self.watch_offsets:
            self._idle.clear()
            return {}
        consumer: Any = app.consumer
        committed: dict[Any, int | None] = getattr(consumer, "_committed_offset", {})
        generation = app.consumer_generation_id
        now = self.clock()
        stuck = {}
        held: set[str] = getattr(app, "held_topics", set())
        for tp in consumer.assignment():
            if tp.topic.endswith("-changelog"):
                continue
            if tp.topic in held:
                # Timed afresh once released: the wait while held was deliberate.
                self._idle.pop(tp, None)
                continue
            offset = committed.get(tp)
            highwater = consumer.highwater(tp)  # None until a fetch from tp has answered
            waiting = highwater is not None and highwater > (offset or 0)
            previous = self._idle.get(tp)
            if not waiting or previous is None or previous[:2] != (generation, offset):
                self._idle[tp] = (generation, offset, now)
                continue
            stuck[tp] = now - previous[2]
        return stuck

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.timeout / 4))
            reason = ""
            suspended = self.suspended_for()
            if suspended >= self.timeout:
                reason = f"its streams have been suspended for {suspended:.0f}s"
            stuck = {tp: s for tp, s in self.stuck_partitions().items() if s >= self.timeout}
            if stuck:
                reason = (
                    f"partitions {sorted(map(str, stuck))} have not advanced with messages waiting"
                )
            if reason:
                log.critical(
                    "worker stalled in consumer generation %s: %s; exiting to be restarted",
                    self.app.consumer_generation_id,
                    reason,
                )
                logging.shutdown()
                os._exit(STALLED_EXIT_STATUS)


def install(app: AppT) -> None:
    """Serve the health views on ``app`` and start the stall watchdog with it."""
    app.page("/healthz")(Healthz)
    app.page("/readyz")(Readyz)
    timeout = float(getattr(getattr(app, "settings", None), "stall_timeout", 0) or 0)
    if timeout > 0:
        watchdog = StallWatchdog(app, timeout)

        async def stall_watchdog() -> None:
            await watchdog.run()

        app.task(stall_watchdog)

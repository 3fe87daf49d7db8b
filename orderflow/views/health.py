"""Liveness, readiness, and the watchdog that ends a worker stuck after a rebalance.

``/healthz`` answers while the event loop runs. ``/readyz`` answers 200 only once the worker has
recovered its tables from their changelogs and resumed its streams, so that a load balancer (or
a Kubernetes readiness probe) sends no query to a worker whose tables are still stale.

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
    """The worker's readiness and the facts it rests on."""
    recovery = cast(TableManager, app.tables).recovery
    recovered = recovery.completed.is_set()
    in_recovery = bool(app.in_recovery)
    rebalancing = bool(app.rebalancing)
    flowing = app.flow_control.is_active()
    ready = recovered and not in_recovery and not rebalancing and flowing
    return {
        "status": "ready" if ready else "starting",
        "ready": ready,
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


class Healthz(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "alive"})


class Readyz(View):
    async def get(self, request: Request) -> Response:
        state = readiness(self.app)
        return self.json(state, status=200 if state["ready"] else 503)


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

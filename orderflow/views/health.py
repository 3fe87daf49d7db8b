"""Liveness, readiness, and the watchdog that ends a worker stuck after a rebalance.

``/healthz`` answers while the event loop runs. ``/readyz`` answers 200 only once the worker has
recovered its tables from their changelogs and resumed its streams, so that a load balancer (or
a Kubernetes readiness probe) sends no query to a worker whose tables are still stale.

Faust can stay stuck after a rebalance: its recovery waits for the consumer thread to seek
to the committed offsets while that thread waits for the next rebalance, and the worker
consumes nothing until another rebalance happens (seen under the chaos test). The watchdog
ends such a worker: when one consumer generation has kept the streams suspended, outside of
table recovery, for ``stall_timeout`` seconds, it logs why and exits with status 70, and the
supervisor (Kubernetes, ``orderflow run``) starts it again. Crashing is safe: every handler
is idempotent and nothing is committed that was not processed.
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
        self._stalled: tuple[int, float] | None = None  # (generation, since)

    def stalled_for(self) -> float:
        """Seconds the current generation has been stalled (0 when it is not)."""
        app = self.app
        suspended = bool(app.rebalancing) or not app.flow_control.is_active()
        if not suspended or app.in_recovery or not app.consumer.assignment():
            self._stalled = None
            return 0.0
        generation = app.consumer_generation_id
        if self._stalled is None or self._stalled[0] != generation:
            self._stalled = (generation, self.clock())
        return self.clock() - self._stalled[1]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.timeout / 4))
            stalled = self.stalled_for()
            if stalled >= self.timeout:
                log.critical(
                    "worker stalled: consumer generation %s has kept its streams suspended "
                    "for %.0fs outside table recovery; exiting so that it is restarted",
                    self.app.consumer_generation_id,
                    stalled,
                )
                logging.shutdown()
                os._exit(70)


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

"""Liveness and readiness.

``/healthz`` answers while the event loop runs. ``/readyz`` answers 200 only once the worker has
an assignment and has recovered its tables from their changelogs, so that a load balancer (or a
Kubernetes readiness probe) sends no query to a worker whose tables are still stale.
"""

from __future__ import annotations

from typing import Any, cast

from faust.tables.manager import TableManager
from faust.types import AppT
from faust.web import Request, Response, View


def readiness(app: AppT) -> dict[str, Any]:
    """The worker's readiness and the facts it rests on."""
    recovery = cast(TableManager, app.tables).recovery
    recovered = recovery.completed.is_set()
    in_recovery = bool(app.in_recovery)
    rebalancing = bool(app.rebalancing)
    ready = recovered and not in_recovery and not rebalancing
    return {
        "status": "ready" if ready else "starting",
        "ready": ready,
        "tables_recovered": recovered,
        "in_recovery": in_recovery,
        "rebalancing": rebalancing,
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


def install(app: AppT) -> None:
    """Serve the health views on ``app``."""
    app.page("/healthz")(Healthz)
    app.page("/readyz")(Readyz)

"""/readyz: what a Service's readiness probe asks (can this worker answer requests?) and what
``?strict=1`` asks (has everything settled?), from the worker's recovery and rebalance state."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from multidict import MultiDict

from orderflow.views.health import is_strict, readyz


def worker(*, recovered: bool, rebalancing: bool = False, in_recovery: bool = False) -> Any:
    completed = asyncio.Event()
    if recovered:
        completed.set()
    recovery = SimpleNamespace(completed=completed, active_remaining_total=lambda: 0)
    return SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery),
        in_recovery=in_recovery,
        rebalancing=rebalancing,
        flow_control=SimpleNamespace(is_active=lambda: not (rebalancing or in_recovery)),
        assignor=SimpleNamespace(assigned_actives=lambda: {"p0", "p1"}),
        breakers={},
    )


def test_a_worker_that_never_recovered_its_tables_is_not_ready() -> None:
    app = worker(recovered=False, in_recovery=True)
    assert readyz(app, strict=False)[0] == 503
    status, state = readyz(app, strict=True)
    assert status == 503
    assert state["status"] == "starting"


def test_a_rebalance_leaves_a_recovered_worker_in_the_service() -> None:
    """Every worker pauses in every rebalance: were they unready then, each scale step would
    empty the Service's endpoints."""
    for moving in ({"rebalancing": True}, {"in_recovery": True}):
        app = worker(recovered=True, **moving)
        status, state = readyz(app, strict=False)
        assert status == 200, state
        assert state["serving"] is True
        assert state["ready"] is False
        assert state["status"] == "rebalancing"
        # The settled state stays available for whoever needs it (tests, orderflow run).
        assert readyz(app, strict=True)[0] == 503


def test_a_settled_worker_is_ready_either_way() -> None:
    app = worker(recovered=True)
    for strict in (False, True):
        status, state = readyz(app, strict=strict)
        assert status == 200
        assert state["status"] == "ready"
        assert state["tables_recovered"] is True


@pytest.mark.parametrize(
    ("query", "strict"),
    [
        ({}, False),
        ({"strict": "1"}, True),
        ({"strict": "true"}, True),
        ({"strict": ""}, True),
        ({"strict": "0"}, False),
        ({"strict": "false"}, False),
    ],
)
def test_the_strict_query(query: dict[str, str], strict: bool) -> None:
    assert is_strict(MultiDict(query)) is strict

"""A request that says a worker forwarded it is answered from this worker's state only if its
mark signs that very request, is recent and is used for the first time; any other is refused
with 401, never answered by a worker that may not own its key."""

from __future__ import annotations

from typing import Any

import orjson

from orderflow.auth import forwarding
from orderflow.views import orders, sagas
from tests.support import auth
from tests.support.views import OWN_URL, FakeApp, Unreachable, call

OTHER = "http://127.0.0.1:6067"
PATH = "/api/v1/sagas/o-1"


def answering_app() -> FakeApp:
    """A worker that answers from an empty saga table, and has no router to forward with:
    a request it takes as forwarded gets 'no saga', any other would reach the router."""
    app = FakeApp()
    app.data = type("Data", (), {"sagas": {}})()
    app.router = Unreachable("router")
    return app


def marked(app: FakeApp, method: str, path: str, body: bytes = b"", **extra: str) -> dict[str, str]:
    admin = auth.admin()
    return {**app.guard.forward_headers(method, path, body, OTHER, admin["Authorization"]), **extra}


async def saga(app: FakeApp, headers: dict[str, str]) -> Any:
    return await call(sagas.Saga, "GET", PATH, {"order_id": "o-1"}, headers, app=app)


async def test_a_signed_mark_is_answered_here_once() -> None:
    app = answering_app()
    headers = marked(app, "GET", PATH)
    answer = await saga(app, headers)
    assert (answer.status, answer.body["detail"]) == (404, "no saga for order o-1")
    replayed = await saga(app, headers)
    assert (replayed.status, replayed.content_type) == (401, "application/problem+json")
    assert "used before" in replayed.body["detail"]


async def test_a_forwarded_by_header_without_a_good_mark_is_refused() -> None:
    app = answering_app()
    admin = auth.admin()
    good = marked(app, "GET", PATH)
    other_path = marked(app, "GET", "/api/v1/sagas/o-2")
    for headers in (
        {**admin, forwarding.FORWARDED_BY: OTHER},  # no signature at all
        {**admin, forwarding.FORWARDED_BY: OTHER, forwarding.SIGNATURE: "t=1,s=00"},
        {**good, forwarding.FORWARDED_BY: str(OWN_URL)},  # signed for another worker
        {**good, "Authorization": auth.service()["Authorization"]},  # another identity
        other_path,  # signed for another request
        {**admin, forwarding.SIGNATURE: good[forwarding.SIGNATURE]},  # no forwarder named
    ):
        answer = await saga(app, headers)
        assert (answer.status, answer.content_type) == (401, "application/problem+json"), headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_mark_signs_the_body_too() -> None:
    app = FakeApp()  # nothing to reach: the mark is refused first
    path = "/api/v1/orders/o-1/cancel"
    signed_for = orjson.dumps({"reason": "customer_request"})
    headers = marked(app, "POST", path, signed_for)
    answer = await call(
        orders.CancelOrder,
        "POST",
        path,
        {"order_id": "o-1"},
        headers,
        body=orjson.dumps({"reason": "something else"}),
        app=app,
    )
    assert answer.status == 401


async def test_a_stale_mark_is_refused() -> None:
    app = answering_app()
    admin = auth.admin()["Authorization"]
    stale = forwarding.sign(
        app.guard.forwarding_key, "GET", PATH, b"", OTHER, admin, now=1_000_000_000
    )
    headers = {"Authorization": admin, forwarding.FORWARDED_BY: OTHER, forwarding.SIGNATURE: stale}
    assert (await saga(app, headers)).status == 401

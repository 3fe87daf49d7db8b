"""Calling an API view's dispatch without a worker: the checks every request passes (tokens,
limits, path parameters, forwarding marks) run as on a worker, and anything a handler would
reach beyond them (tables, the database, other workers) is whatever a test puts there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from yarl import URL

from orderflow.auth.guard import Guard
from orderflow.settings import Settings
from orderflow.views.base import BODY
from tests.support.auth import TEST_JWT_SECRET

OWN_URL = URL("http://127.0.0.1:6066")


class Unreachable:
    """What a handler must not get to: any attribute read fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"the handler reached {self._name}.{attribute}")


class _Sensors:
    def on_web_request_start(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_web_request_end(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Conf:
    canonical_url = OWN_URL


@dataclass
class FakeApp:
    """Just what ApiView's dispatch reads of the app, plus what a test sets."""

    settings: Settings = field(default_factory=lambda: Settings(jwt_secret=TEST_JWT_SECRET))
    data: Any = field(default_factory=lambda: Unreachable("data"))
    database: Any = field(default_factory=lambda: Unreachable("database"))
    read_side: Any = field(default_factory=lambda: Unreachable("read_side"))
    router: Any = field(default_factory=lambda: Unreachable("router"))
    http_client: Any = field(default_factory=lambda: Unreachable("http_client"))
    admission: Any = field(default_factory=lambda: Unreachable("admission"))
    sensors: Any = field(default_factory=_Sensors)
    conf: Any = field(default_factory=_Conf)
    guard: Guard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = Guard.from_settings(self.settings)


class FakeWeb:
    def bytes(
        self,
        value: bytes,
        *,
        content_type: str | None = None,
        status: int = 200,
        reason: str | None = None,
        headers: Any = None,
    ) -> web.Response:
        return web.Response(
            body=value, content_type=content_type, status=status, reason=reason, headers=headers
        )


@dataclass
class Answer:
    status: int
    content_type: str
    body: Any
    headers: Any


async def call(
    view_class: type,
    method: str,
    path: str,
    match_info: dict[str, str],
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    app: FakeApp | None = None,
) -> Answer:
    """Dispatch one request to a new ``view_class`` on ``app`` and read its answer."""
    app = app or FakeApp()
    sent = CIMultiDict(headers or {})
    if body:
        sent.setdefault("Content-Type", "application/json")
        sent["Content-Length"] = str(len(body))
    request = make_mocked_request(method, path, headers=sent, match_info=match_info)
    if body:
        request[BODY] = body
    view = view_class(app, FakeWeb())
    response = await view.dispatch(request)
    raw = response.body or b""
    return Answer(
        response.status,
        response.content_type,
        orjson.loads(raw) if raw else None,
        response.headers,
    )

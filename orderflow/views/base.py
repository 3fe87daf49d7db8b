"""The base of orderflow's views: problem+json for every error, and routing to the key's owner.

A query for a key is answered by the worker whose active partition holds it. Any worker
accepts the request; if another worker owns the key, this one forwards it there (once: the
forwarded request carries a header and is answered where it lands) and relays the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from faust.web import Request, Response, View
from yarl import URL

from orderflow.tables.typed import TypedTable
from orderflow.views.problems import Problem, problem_response

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)

FORWARDED_BY = "X-Orderflow-Forwarded-By"
# What the owner needs of the client's request besides its method, path and body.
FORWARDED_HEADERS = ("Idempotency-Key",)
# What the client needs of the owner's answer besides its status, body and content type.
RELAYED_HEADERS = ("Location", "Idempotent-Replayed", "Retry-After")
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=40)  # above the longest long-poll (30 s)


def _ident(url: URL | str) -> tuple[str, int]:
    parsed = URL(str(url))
    return parsed.host or "", parsed.port or 80


class ApiView(View):
    """Turns Problem (and unexpected errors) into problem+json answers."""

    @property
    def platform(self) -> OrderflowApp:
        """The app serving this view, with the platform's settings, tables and clients."""
        return cast("OrderflowApp", self.app)

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except Problem as problem:
            return problem_response(self, problem, request.path)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return problem_response(
                self, Problem(500, "internal error; the worker log has the details"), request.path
            )

    async def routed(
        self,
        request: Request,
        table: TypedTable[Any],
        key: str,
        local: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Answer here if this worker owns ``key`` in ``table``, else relay the owner's answer."""
        if request.headers.get(FORWARDED_BY):
            return await local()
        owner = self._owner(table, key)
        if owner is None:
            raise Problem(503, "no worker owns this key right now (the group is rebalancing)")
        if _ident(owner) == _ident(self.app.conf.canonical_url):
            return await local()
        return await self._forward(request, owner)

    def _owner(self, table: TypedTable[Any], key: str) -> URL | None:
        """The web URL of the worker whose active partitions include the key's partition."""
        partition = table.partition_of(key)
        for url, topics in self.app.router.table_metadata(table.name).items():
            if partition in topics.get(table.changelog_topic, ()):
                return URL(url)
        return None

    async def _forward(self, request: Request, owner: URL) -> Response:
        app = self.app
        target = request.url.with_host(owner.host or "").with_port(owner.port)
        headers = {
            FORWARDED_BY: str(app.conf.canonical_url),
            "Accept": request.headers.get("Accept", "application/json"),
        }
        headers.update({k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k))})
        body = await self.read_request_content(request) if request.method != "GET" else None
        if body is not None:
            headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        try:
            async with app.http_client.request(
                request.method, target, headers=headers, data=body, timeout=FORWARD_TIMEOUT
            ) as answer:
                relayed = {k: v for k, v in answer.headers.items() if k in RELAYED_HEADERS}
                return self.bytes(
                    await answer.read(),
                    content_type=answer.content_type,
                    status=answer.status,
                    headers=relayed or None,
                )
        except (TimeoutError, aiohttp.ClientError) as error:
            detail = f"the worker that owns this key ({owner}) did not answer: {error}"
            raise Problem(503, detail) from None

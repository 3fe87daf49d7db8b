"""The base of orderflow's API views: access control, rate limits, problem+json for every
error, and routing to the key's owner.

Every request is first checked here: its bearer token verified (orderflow.auth), its client's
rate-limit bucket charged, and the operation's roles enforced, before the handler runs.

A query for a key is answered by the worker whose active partition holds it. Any worker
accepts the request; if another worker owns the key, this one forwards it there (once: the
forwarded request carries a signed mark and is answered where it lands) and relays the answer.
The client's Authorization header travels with it and the owner verifies it again, so the
owner applies the same identity to the data it holds (see docs/ARCHITECTURE.md, "Who checks
what").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

import aiohttp
import orjson
from aiohttp import web
from faust.web import Request, Response, View
from faust.web.exceptions import WebError
from yarl import URL

from orderflow.auth.principal import Principal
from orderflow.auth.tokens import TokenRefused
from orderflow.tables.typed import TypedTable
from orderflow.views import server
from orderflow.views.access import Operation
from orderflow.views.parameters import path_problem
from orderflow.views.problems import PROBLEM_JSON, Problem, problem_response

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp
    from orderflow.auth.guard import Guard

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the owner needs of the client's request besides its method, path and body (the
# Authorization header is added with the forwarding mark).
FORWARDED_HEADERS = ("Idempotency-Key",)
# What the client needs of the owner's answer besides its status, body and content type.
RELAYED_HEADERS = ("Location", "Idempotent-Replayed", "Retry-After")
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=40)  # above the longest long-poll (30 s)
PRINCIPAL = "orderflow.principal"
FORWARDED = "orderflow.forwarded"
BODY = "orderflow.body"
REALM = 'realm="orderflow"'


@web.middleware
async def api_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route or method under /api/v1 is answered with problem+json too, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if not request.path.startswith("/api/") or error.status < 400:
            raise
        document = {
            "type": "about:blank",
            "title": error.reason,
            "status": error.status,
            "detail": f"{error.reason}: {request.method} {request.path[:200]}",
            "instance": request.path[:200],
        }
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return web.Response(
            body=orjson.dumps(document),
            status=error.status,
            content_type=PROBLEM_JSON,
            headers=headers,
        )


def install(app: Any) -> None:
    """Put api_problems on the worker's aiohttp application, and answer what aiohttp's parser
    refuses with problems too (orderflow.views.server); before the web server starts."""
    app.web.web_app.middlewares.append(api_problems)
    server.install(app.web)


def _ident(url: URL | str) -> tuple[str, int]:
    parsed = URL(str(url))
    return parsed.host or "", parsed.port or 80


def _challenge(error: str | None, description: str) -> str:
    if error is None:
        return f"Bearer {REALM}"
    safe = description.replace('"', "'")
    return f'Bearer {REALM}, error="{error}", error_description="{safe}"'


def request_target(request: Request) -> str:
    """The path and query of a request, as the forwarding signature covers them."""
    return str(request.rel_url)


class ApiView(View):
    """Checks access and limits, and turns Problem (and unexpected errors) into problem+json."""

    # The operation of each HTTP method (lower case) this view serves.
    operations: ClassVar[Mapping[str, Operation]] = {}

    @property
    def platform(self) -> OrderflowApp:
        """The app serving this view, with the platform's settings, tables and clients."""
        return cast("OrderflowApp", self.app)

    @property
    def guard(self) -> Guard:
        return self.platform.guard

    @staticmethod
    def principal(request: Request) -> Principal | None:
        """Who sent the request (checked by dispatch); None on a public operation without one."""
        return cast("Principal | None", cast(Any, request).get(PRINCIPAL))

    def caller(self, request: Request) -> Principal:
        """Who sent the request, on an operation that requires a token."""
        principal = self.principal(request)
        assert principal is not None, "dispatch lets no request without a token through here"
        return principal

    async def dispatch(self, request: Any) -> Any:
        headers: dict[str, str] = {}
        try:
            response = await self._checked(request, headers)
        except Problem as problem:
            problem.headers = {**headers, **problem.headers}
            return problem_response(self, problem, request.path)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            internal = Problem(500, "internal error; the worker log has the details")
            internal.headers = headers
            return problem_response(self, internal, request.path)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    async def _checked(self, request: Any, headers: dict[str, str]) -> Any:
        method = "get" if request.method == "HEAD" else request.method.lower()
        operation = self.operations.get(method)
        if operation is None:
            allowed = ", ".join(sorted(m.upper() for m in self.operations))
            raise Problem(405, f"{request.method} is not allowed here", headers={"Allow": allowed})
        guard = self.guard
        trusted = False
        if guard.says_forwarded(request.headers):
            # Never answered from this worker's state on the strength of a header alone.
            body = await self.read_request_content(request)
            trusted = guard.trusts_forward(
                request.method, request_target(request), body, request.headers
            )
            if not trusted:
                raise Problem(
                    401,
                    "the request says a worker forwarded it, but its forwarding mark does not "
                    "verify: it is wrong, too old, or was used before",
                    headers={"WWW-Authenticate": _challenge("invalid_request", "bad mark")},
                )
        request[FORWARDED] = trusted
        refused: TokenRefused | None = None
        principal: Principal | None = None
        try:
            principal = await guard.principal(request.headers.get("Authorization"))
        except TokenRefused as error:
            refused = error
        if operation.limit is not None and not trusted:
            client = f"sub:{principal.subject}" if principal else f"addr:{request.remote}"
            verdict = guard.limiter.take(operation.limit, client)
            if verdict is not None:
                headers.update(verdict.headers())
                if not verdict.allowed:
                    raise Problem(
                        429,
                        f"too many requests; retry in {verdict.retry_after} s",
                        headers={"Retry-After": str(verdict.retry_after)},
                    )
        if refused is not None:
            challenge = _challenge(refused.error, refused.description)
            raise Problem(401, refused.description, headers={"WWW-Authenticate": challenge})
        why = operation.authorize(principal)
        if why == "token":
            raise Problem(
                401,
                "this operation needs a bearer token (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": _challenge(None, "")},
            )
        if why == "role":
            roles = ", ".join(sorted(operation.roles or ()))
            challenge = _challenge("insufficient_scope", f"requires one of the roles {roles}")
            raise Problem(
                403, f"this operation requires one of the roles: {roles}",
                headers={"WWW-Authenticate": challenge},
            )  # fmt: skip
        if (problem := path_problem(request.match_info or {})) is not None:
            raise Problem(400, problem)
        request[PRINCIPAL] = principal
        return await super().dispatch(request)

    async def read_request_content(self, request: Request) -> bytes:
        """The body, read once (a forward sends it again) and at most max_body_bytes (413)."""
        cached = cast(Any, request).get(BODY)
        if cached is not None:
            return cast(bytes, cached)
        limit = self.platform.settings.max_body_bytes
        too_large = Problem(413, f"the body is larger than {limit} bytes")
        declared = cast(Any, request).content_length
        if declared is not None and declared > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in cast(Any, request).content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        body = b"".join(chunks)
        cast(Any, request)[BODY] = body
        return body

    async def on_request_error(self, request: Request, exc: WebError) -> Response:
        raise Problem(exc.code, str(exc.detail))

    async def routed(
        self,
        request: Request,
        table: TypedTable[Any],
        key: str,
        local: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Answer here if this worker owns ``key`` in ``table``, else relay the owner's answer."""
        if cast(Any, request).get(FORWARDED):
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
        body = await self.read_request_content(request) if request.method != "GET" else None
        headers = {
            "Accept": request.headers.get("Accept", "application/json"),
            **self.guard.forward_headers(
                request.method,
                request_target(request),
                body or b"",
                str(app.conf.canonical_url),
                request.headers.get("Authorization"),
            ),
        }
        headers.update({k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k))})
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
            log.warning("forwarding %s %s to %s failed: %r", request.method, target, owner, error)
            raise Problem(503, "the worker that owns this key did not answer; retry") from None

"""Request counts and latencies of every HTTP route, by route pattern (bounded labels)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from faust.types import AppT
from opentelemetry.trace import SpanKind

from orderflow.observability import tracing
from orderflow.observability.metrics import HTTP_DURATION, HTTP_REQUESTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    parent = tracing.extract(request.headers)
    name = f"HTTP {request.method} {route}"
    try:
        with tracing.span(name, kind=SpanKind.SERVER, parent=parent) as span:
            response = await handler(request)
            status = response.status
            if span is not None:
                span.set_attribute("http.response.status_code", status)
            return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        HTTP_DURATION.labels(route, request.method).observe(time.perf_counter() - started)


def install(app: AppT) -> None:
    """Add the middleware to the worker's aiohttp application (before it starts)."""
    # The aiohttp driver of faust.web keeps its aiohttp.web.Application as ``web_app``.
    aiohttp_app: web.Application = app.web.web_app  # type: ignore[attr-defined]
    aiohttp_app.middlewares.append(observe_requests)

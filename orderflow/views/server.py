"""What the worker's HTTP server answers to a request it cannot parse: problem+json too.

aiohttp's parser refuses a request before any handler or middleware sees it: a header field
or request line longer than its limit (8190 bytes), too many header fields, a malformed
message. aiohttp then answers itself, with ``RequestHandler.handle_error``: a text/plain 400
whose body repeats the parser's message, which quotes the first 100 bytes of the offending
line (the start of a bearer token, say). The server's connections here are handled by
:class:`ProblemRequestHandler` instead, which answers those with an RFC 9457 document that
repeats nothing of the request: 431 for header fields that are too long or too many, 414
for a request target that is too long, 400 for any other malformed request (and 500 or 504
as aiohttp would, for errors past the parser). The limits stay aiohttp's.

Faust's aiohttp driver makes the server through its ``AppRunner``; :func:`install` puts
:class:`ProblemRunner` in its place before the web server starts.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from orderflow.views.problems import PROBLEM_JSON

log = logging.getLogger(__name__)

TOO_MANY_HEADERS = "Too many headers received"
_TITLES = {
    400: "Bad Request",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    504: "Gateway Timeout",
}


def parse_problem(exc: BaseException | None, status: int) -> tuple[int, str]:
    """The status and detail to answer for an error aiohttp handles itself."""
    if isinstance(exc, LineTooLong):
        line, limit = exc.args[0], exc.args[1]
        # The C parser reports the request target itself when the request line is too long
        # (it starts with '/'), and a header field's name or value otherwise.
        if isinstance(line, bytes | bytearray | str) and line[:1] in (b"/", bytearray(b"/"), "/"):
            return 414, f"the request target is longer than {limit} bytes"
        return 431, f"a header field is longer than {limit} bytes"
    if isinstance(exc, BadHttpMessage) and exc.message == TOO_MANY_HEADERS:
        return 431, "the request has too many header fields"
    if isinstance(exc, HttpProcessingError):
        return 400, "the request is not valid HTTP/1.1"
    if status == 504:
        return 504, "the request took too long to handle"
    if 400 <= status < 500:
        return status, "the request cannot be handled"
    return 500, "internal error; the worker log has the details"


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering the errors it handles itself with problems."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        status, detail = parse_problem(exc, status)
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            log.debug("refused a request from %s: %r", request.remote, exc)
        if request.writer.output_size > 0:
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        document = {
            "type": "about:blank",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
        response = web.Response(
            body=orjson.dumps(document), status=status, content_type=PROBLEM_JSON
        )
        response.force_close()
        return response


class ProblemServer(Server):
    """aiohttp's low-level server, with a ProblemRequestHandler for each connection."""

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemRunner(web.AppRunner):
    """The AppRunner Faust's aiohttp driver makes, serving through a ProblemServer."""

    async def _make_server(self) -> Server:
        made = await super()._make_server()
        return ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def install(web_driver: Any) -> None:
    """Serve the app of Faust's aiohttp web driver through a ProblemRunner (before it starts)."""
    runner = getattr(web_driver, "_runner", None)
    if not isinstance(runner, web.AppRunner) or runner.server is not None:
        raise RuntimeError("the web driver has no AppRunner that has not started yet")
    web_driver._runner = ProblemRunner(
        web_driver.web_app,
        handle_signals=runner._handle_signals,
        shutdown_timeout=runner._shutdown_timeout,
        **runner._kwargs,
    )

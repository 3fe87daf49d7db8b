"""What aiohttp's parser refuses is answered with problem+json that repeats nothing of the
request, on the web server of a Faust app (orderflow.views.server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import faust
import orjson
import pytest
from aiohttp import web

from orderflow.views import server

SECRET = b"Bearer " + b"eyJSECRET" * 1100  # over aiohttp's 8190-byte field limit


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, int]]:
    app = faust.App("problems-test", broker="memory://", web_enabled=True)
    driver = app.web
    driver.web_app.router.add_get("/hello", hello)
    server.install(driver)
    runner = driver._runner
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield host, port
    finally:
        await runner.cleanup()


async def exchange(address: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def get(target: bytes = b"/hello", *headers: bytes) -> bytes:
    fields = b"".join(header + b"\r\n" for header in headers)
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get(b"/hello", b"Authorization: " + SECRET), 431),
        (get(b"/hello", b"X-" + b"n" * 9000 + b": 1"), 431),
        (get(b"/hello", *(b"X-H%d: 1" % i for i in range(200))), 431),
        (get(b"/" + b"eyJSECRET" * 1000), 414),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header eyJSECRET\r\n\r\n", 400),
        (b"eyJSECRET\r\n\r\n", 400),
    ],
)
async def test_what_the_parser_refuses_is_a_problem_that_repeats_nothing(
    address: tuple[str, int], request_bytes: bytes, status: int
) -> None:
    answer, headers, body = await exchange(address, request_bytes)
    assert answer == status
    assert headers["content-type"] == "application/problem+json"
    problem = orjson.loads(body)
    assert problem["status"] == status
    assert problem["detail"]
    assert b"eyJ" not in body
    assert b"Bearer" not in body


async def test_requests_that_parse_are_served_as_before(address: tuple[str, int]) -> None:
    status, _, body = await exchange(address, get())
    assert (status, orjson.loads(body)) == (200, {"hello": "world"})


def test_the_runner_is_replaced_only_before_the_server_starts() -> None:
    app = faust.App("problems-test-2", broker="memory://", web_enabled=True)
    server.install(app.web)
    assert isinstance(app.web._runner, server.ProblemRunner)
    with pytest.raises(RuntimeError):
        server.install(object())

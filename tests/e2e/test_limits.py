"""Rate limits and input bounds on two real workers.

Writes are limited to 3 per client in a burst (one more every 10 s), reads to 4 (one more
every 15 s). A client over its limit gets 429 with Retry-After and the RateLimit headers; the
others go on as if nothing happened; a request forwarded to the key's owner is charged once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support import auth
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers, running

SKU = "SKU-LIMITS"


@pytest.fixture(scope="module")
def workers(
    kafka_bootstrap: str,
    database_url: str,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[WorkerProcess]]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    with PaymentSimulator(tmp / "payment-sim.log") as simulator:
        processes = platform_workers(
            2,
            tmp,
            name=f"{run_id}-limits",
            kafka=kafka_bootstrap,
            partitions=4,
            database_url=database_url,
            gateway=simulator.url,
            session_timeout="6",
            rate_limit_writes="3/30",
            rate_limit_reads="4/60",
            rate_limit_public="2/60",
            max_body_bytes="2048",
        )
        with running(processes):
            yield processes


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
        yield client


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any = None,
) -> tuple[int, Any, Any, float]:
    data = None if body is None else orjson.dumps(body)
    sent = {**headers, **({"Content-Type": "application/json"} if data is not None else {})}
    started = time.monotonic()
    async with session.request(method, url, data=data, headers=sent) as response:
        raw = await response.read()
        elapsed = time.monotonic() - started
        return response.status, orjson.loads(raw) if raw else None, response.headers, elapsed


def order() -> dict[str, Any]:
    return {
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": 1, "unit_price": 100}],
        "payment": {"token": "tok_visa"},
    }


async def test_a_client_over_its_limit_gets_429_and_others_go_on(
    workers: list[WorkerProcess], session: aiohttp.ClientSession, run_id: str
) -> None:
    url = f"{workers[0].url}/api/v1/orders"
    greedy, modest = auth.customer(f"{run_id}-greedy"), auth.customer(f"{run_id}-modest")
    answers = [await call(session, "POST", url, greedy, order()) for _ in range(3)]
    for remaining, (status, _, headers, _) in zip((2, 1, 0), answers, strict=True):
        assert status == 202
        assert headers["RateLimit-Policy"] == '"writes";q=3;w=30'
        assert headers["RateLimit"].startswith(f'"writes";r={remaining};t=')
    # Over the limit: refused, with when to come back, while the modest client is served.
    flood = [call(session, "POST", url, greedy, order()) for _ in range(30)]
    served = [call(session, "POST", url, modest, order()) for _ in range(3)]
    results = await asyncio.gather(*flood, *served)
    for status, problem, headers, _ in results[:30]:
        assert status == 429
        assert headers["Content-Type"] == "application/problem+json"
        assert problem["status"] == 429
        assert 1 <= int(headers["Retry-After"]) <= 10
        assert headers["RateLimit"].startswith('"writes";r=0;t=')
        assert headers["RateLimit-Policy"] == '"writes";q=3;w=30'
    for status, _, _, elapsed in results[30:]:
        assert status == 202
        assert elapsed < 5.0, elapsed  # a database write, not a wait behind the flood
    # The modest client spent its own burst, one token each, whatever the flood did.
    remaining = {headers["RateLimit"].split(";")[1] for _, _, headers, _ in results[30:]}
    assert remaining == {"r=2", "r=1", "r=0"}


async def test_a_forwarded_request_is_charged_once(
    workers: list[WorkerProcess], session: aiohttp.ClientSession, run_id: str
) -> None:
    writer = auth.customer(f"{run_id}-reader")
    status, accepted, _, _ = await call(
        session, "POST", f"{workers[1].url}/api/v1/orders", writer, order()
    )
    assert status == 202
    path = f"/api/v1/orders/{accepted['order_id']}"
    # One worker owns the order and the other forwards to it. Two reads through each: if the
    # owner charged forwarded reads again, its bucket of 4 would see 4 + 2 and refuse.
    for worker in (*workers, *workers):
        status, _, headers, _ = await call(session, "GET", worker.url + path, writer)
        assert status == 200
    for worker in workers:
        status, _, headers, _ = await call(session, "GET", worker.url + path, writer)
        assert (status, headers["RateLimit"][:14]) == (200, '"reads";r=1;t=')
        status, _, headers, _ = await call(session, "GET", worker.url + path, writer)
        assert (status, headers["RateLimit"][:14]) == (200, '"reads";r=0;t=')
        status, _, headers, _ = await call(session, "GET", worker.url + path, writer)
        assert status == 429


async def test_public_routes_are_limited_by_client_address(
    workers: list[WorkerProcess], session: aiohttp.ClientSession
) -> None:
    url = f"{workers[1].url}/api/v1/products/NO-SUCH-PRODUCT"
    statuses = []
    for _ in range(3):
        status, _, headers, _ = await call(session, "GET", url, {})
        statuses.append(status)
        assert headers["RateLimit-Policy"] == '"public";q=2;w=60'
    assert statuses[-1] == 429
    assert all(s != 429 for s in statuses[:-1])


async def test_bodies_must_be_small_json_of_bounded_shape(
    workers: list[WorkerProcess], session: aiohttp.ClientSession
) -> None:
    url = f"{workers[0].url}/api/v1/inventory/{SKU}/adjustments"
    admin = auth.admin()
    too_large = orjson.dumps({"delta": 1, "reason": "x" * 4000})
    async with session.post(
        url, data=too_large, headers={**admin, "Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert response.headers["Content-Type"] == "application/problem+json"
    async with session.post(
        url, data=b'{"delta": 1, "reason": "r"}', headers={**admin, "Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
        assert (await response.json(content_type=None))["status"] == 415
    deep: Any = 1
    for _ in range(20):
        deep = [deep]
    status, problem, _, _ = await call(
        session, "POST", url, admin, {"delta": 1, "reason": "r", "x": deep}
    )
    assert status == 422
    assert "deeper" in problem["detail"]
    status, problem, _, _ = await call(
        session, "POST", url, admin, {"delta": 1, "reason": "r" * 201}
    )
    assert status == 422
    assert {"field": "reason", "message": "required, at most 200 characters"} in problem["errors"]
    # Not a 500, and nothing internal: a body that is not JSON at all.
    async with session.post(
        url, data=b"\xff\xfe{", headers={**admin, "Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        body = await response.json(content_type=None)
        assert "Traceback" not in body["detail"]

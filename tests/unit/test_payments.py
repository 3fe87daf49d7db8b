"""The payment gateway client against the real simulator, served on a loopback port."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from orderflow.payments.cli import payment_sim
from orderflow.payments.gateway import (
    Authorization,
    AuthorizationRequest,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    HttpPaymentGateway,
)
from orderflow.payments.simulator import SimulatorConfig, running

TIMEOUT = 0.2  # the client timeout where a test waits for one


def _request(
    order_id: str = "order-1",
    amount: int = 1_250,
    *,
    token: str = "tok_visa",
    key: str | None = None,
    currency: str = "EUR",
) -> AuthorizationRequest:
    return AuthorizationRequest(
        order_id=order_id,
        amount=amount,
        currency=currency,
        token=token,
        idempotency_key=key or f"authorize:{order_id}",
    )


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Closes what a test started, newest first: gateways before the simulators they call."""
    async with AsyncExitStack() as exit_stack:
        yield exit_stack


async def _simulator(stack: AsyncExitStack, **config: Any) -> str:
    return await stack.enter_async_context(running(SimulatorConfig(**config)))


async def _gateway(stack: AsyncExitStack, url: str) -> HttpPaymentGateway:
    return await stack.enter_async_context(HttpPaymentGateway(url, timeout=5.0))


async def _http(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        return r.status, await r.json()


async def _authorizations(url: str, order_id: str) -> list[dict[str, Any]]:
    status, body = await _http("GET", f"{url}/v1/orders/{order_id}/authorizations")
    assert status == 200
    assert body["order_id"] == order_id
    authorizations: list[dict[str, Any]] = body["authorizations"]
    return authorizations


async def test_approves_and_records_the_authorization(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)

    result = await gateway.authorize(_request("order-1", 1_250))

    assert result.approved
    assert result.decline_reason is None
    assert result.payment_id is not None
    assert result.payment_id.startswith("pay_")
    status, record = await _http("GET", f"{url}/v1/authorizations/{result.payment_id}")
    assert status == 200
    assert record == {
        "payment_id": result.payment_id,
        "order_id": "order-1",
        "amount": 1_250,
        "currency": "EUR",
        "status": "authorized",
    }
    assert await _authorizations(url, "order-1") == [record]


async def test_declines_the_decline_token(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)

    result = await gateway.authorize(_request(token="tok_decline"))

    assert result == Authorization(approved=False, payment_id=None, decline_reason="card_declined")
    assert await _authorizations(url, "order-1") == []


async def test_declines_amounts_over_the_limit(stack: AsyncExitStack) -> None:
    url = await _simulator(stack, decline_over=5_000)
    gateway = await _gateway(stack, url)

    over = await gateway.authorize(_request("order-over", 5_001))
    at_limit = await gateway.authorize(_request("order-at", 5_000))

    assert over == Authorization(False, None, "amount_over_limit")
    assert at_limit.approved
    assert await _authorizations(url, "order-over") == []
    assert len(await _authorizations(url, "order-at")) == 1


async def test_the_same_idempotency_key_returns_the_first_authorization(
    stack: AsyncExitStack,
) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)
    request = _request("order-7", key="saga:order-7:authorize")

    first = await gateway.authorize(request)
    retries = await asyncio.gather(*(gateway.authorize(request) for _ in range(5)))

    assert first.approved
    assert all(retry == first for retry in retries)
    records = await _authorizations(url, "order-7")
    assert [record["payment_id"] for record in records] == [first.payment_id]


async def test_a_declined_key_replays_its_decline(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    request = _request(token="tok_decline", key="k-decline")

    status, body = await _http(
        "POST",
        f"{url}/v1/authorizations",
        json={"order_id": "order-1", "amount": 1_250, "currency": "EUR", "token": "tok_decline"},
        headers={"Idempotency-Key": request.idempotency_key},
    )
    gateway = await _gateway(stack, url)
    replayed = await gateway.authorize(request)

    assert (status, body) == (402, {"status": "declined", "reason": "card_declined"})
    assert replayed == Authorization(False, None, "card_declined")


async def test_the_same_key_with_another_request_is_refused(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)
    first = await gateway.authorize(_request("order-1", 1_000, key="shared"))

    with pytest.raises(GatewayError, match=r"\(422\).*different request") as refused:
        await gateway.authorize(_request("order-1", 2_000, key="shared"))

    assert not isinstance(refused.value, (GatewayTimeout, GatewayUnavailable))
    records = await _authorizations(url, "order-1")
    assert [record["payment_id"] for record in records] == [first.payment_id]


async def test_an_unanswered_call_times_out_without_leaking_server_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with (
        running(SimulatorConfig()) as url,
        HttpPaymentGateway(url, timeout=TIMEOUT) as gateway,
    ):
        baseline = len(asyncio.all_tasks())
        started = time.monotonic()
        with pytest.raises(GatewayTimeout):
            await gateway.authorize(_request(token="tok_timeout"))
        elapsed = time.monotonic() - started
        # The client's disconnect cancels the hung handler: its task ends, it does not linger.
        for _ in range(200):
            if len(asyncio.all_tasks()) <= baseline:
                break
            await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks()) <= baseline
        assert await _authorizations(url, "order-1") == []

    assert TIMEOUT <= elapsed < TIMEOUT + 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_stopping_releases_calls_that_are_still_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    started = time.monotonic()
    async with running(SimulatorConfig()) as url:
        gateway = HttpPaymentGateway(url, timeout=30)
        call = asyncio.create_task(gateway.authorize(_request(token="tok_timeout")))
        await asyncio.sleep(0.2)
        assert not call.done()
    try:
        # Stopping answered the waiting call instead of waiting for its 30 s timeout.
        with pytest.raises(GatewayUnavailable, match="503"):
            await call
    finally:
        await gateway.close()
    assert time.monotonic() - started < 5
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_an_outage_is_unavailable_and_authorizes_nothing(stack: AsyncExitStack) -> None:
    url = await _simulator(stack, failure_rate=1.0)
    gateway = await _gateway(stack, url)

    with pytest.raises(GatewayUnavailable, match="503"):
        await gateway.authorize(_request())

    assert await _authorizations(url, "order-1") == []


async def test_a_failed_call_is_not_remembered_under_its_key(stack: AsyncExitStack) -> None:
    # A seed whose first draw fails (< 0.5) and whose second does not.
    seed = next(s for s in range(1000) if _draws(s, 2) == [True, False])
    url = await _simulator(stack, failure_rate=0.5, seed=seed)
    gateway = await _gateway(stack, url)
    request = _request(key="retry-me")

    with pytest.raises(GatewayUnavailable):
        await gateway.authorize(request)
    retried = await gateway.authorize(request)

    assert retried.approved
    assert len(await _authorizations(url, "order-1")) == 1


def _draws(seed: int, count: int) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(count)]


async def test_a_closed_port_is_unavailable(stack: AsyncExitStack) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = await _gateway(stack, f"http://127.0.0.1:{port}")

    with pytest.raises(GatewayUnavailable, match="unreachable"):
        await gateway.authorize(_request())


async def test_a_malformed_answer_is_unavailable(stack: AsyncExitStack) -> None:
    # A real server that is not a payment gateway: 201, but no JSON.
    async def not_json(request: web.Request) -> web.Response:
        return web.Response(status=201, text="<html>created</html>")

    app = web.Application()
    app.router.add_post("/v1/authorizations", not_json)
    server_runner = web.AppRunner(app)
    await server_runner.setup()
    stack.push_async_callback(server_runner.cleanup)
    await web.TCPSite(server_runner, "127.0.0.1", 0).start()
    host, port = server_runner.addresses[0][:2]
    gateway = await _gateway(stack, f"http://{host}:{port}")

    with pytest.raises(GatewayUnavailable, match="not a JSON object"):
        await gateway.authorize(_request())


async def test_a_wrong_base_url_is_a_final_error(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, f"{url}/not-the-api")

    with pytest.raises(GatewayError, match="404") as refused:
        await gateway.authorize(_request())

    assert not isinstance(refused.value, (GatewayTimeout, GatewayUnavailable))


async def test_void_is_idempotent(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)
    approved = await gateway.authorize(_request())
    assert approved.payment_id is not None

    await gateway.void(approved.payment_id, idempotency_key="void:order-1")
    await gateway.void(approved.payment_id, idempotency_key="void:order-1")

    status, record = await _http("GET", f"{url}/v1/authorizations/{approved.payment_id}")
    assert (status, record["status"]) == (200, "voided")
    assert [r["status"] for r in await _authorizations(url, "order-1")] == ["voided"]


async def test_void_of_an_unknown_payment_is_a_final_error(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    gateway = await _gateway(stack, url)

    with pytest.raises(GatewayError, match=r"'pay_nope'.*does not know it") as refused:
        await gateway.void("pay_nope", idempotency_key="void:x")

    assert not isinstance(refused.value, (GatewayTimeout, GatewayUnavailable))


async def test_an_unknown_payment_is_not_found(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)

    status, body = await _http("GET", f"{url}/v1/authorizations/pay_nope")

    assert status == 404
    assert "pay_nope" in body["error"]


async def test_the_idempotency_key_is_required(stack: AsyncExitStack) -> None:
    url = await _simulator(stack)
    body = {"order_id": "o", "amount": 1, "currency": "EUR", "token": "tok_visa"}

    status, answer = await _http("POST", f"{url}/v1/authorizations", json=body)

    assert status == 400
    assert "Idempotency-Key" in answer["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_id": ""}, "order_id"),
        ({"amount": 0}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"token": None}, "token"),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    stack: AsyncExitStack, change: dict[str, Any], field: str
) -> None:
    url = await _simulator(stack)
    body = {"order_id": "o", "amount": 1, "currency": "EUR", "token": "tok_visa", **change}

    status, answer = await _http(
        "POST", f"{url}/v1/authorizations", json=body, headers={"Idempotency-Key": "k"}
    )

    assert status == 400
    assert answer["error"].startswith(field)
    assert await _authorizations(url, "o") == []


async def test_latency_delays_every_answer(stack: AsyncExitStack) -> None:
    url = await _simulator(stack, latency_ms=150)

    started = time.monotonic()
    status, body = await _http("GET", f"{url}/healthz")

    assert (status, body) == (200, {"status": "alive"})
    assert time.monotonic() - started >= 0.15


async def test_the_client_opens_no_session_until_called_and_refuses_calls_once_closed() -> None:
    gateway = HttpPaymentGateway("http://127.0.0.1:9", timeout=1)  # constructed outside a call
    await gateway.close()  # nothing to close: no session was made

    with pytest.raises(GatewayError, match="closed"):
        await gateway.authorize(_request())


def test_the_simulator_config_is_validated() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        SimulatorConfig(failure_rate=1.5)
    result = CliRunner().invoke(payment_sim, ["--failure-rate", "2"])
    assert result.exit_code == 2
    assert "--failure-rate" in result.output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_the_payment_sim_command_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "orderflow.payments.cli", "--port", "0", "--decline-over", "900"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("payment simulator listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        await _wait_alive(url)
        async with HttpPaymentGateway(url, timeout=5) as gateway:
            approved = await gateway.authorize(_request("order-cli", 900))
            declined = await gateway.authorize(_request("order-cli-2", 901))
        assert approved.approved
        assert declined.decline_reason == "amount_over_limit"

        started = time.monotonic()
        process.send_signal(stop_signal)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
        assert time.monotonic() - started < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stderr == b""


async def _wait_alive(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            status, body = await _http("GET", f"{url}/healthz")
        except aiohttp.ClientConnectionError:
            status, body = 0, None
        if (status, body) == (200, {"status": "alive"}):
            return
        assert time.monotonic() < deadline, f"{url}/healthz did not answer"
        await asyncio.sleep(0.05)

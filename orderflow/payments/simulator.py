"""A simulated payment gateway: a small aiohttp service with deterministic rules.

Tests and the local platform need a gateway whose every answer can be provoked on purpose:
an approval, a decline (``tok_decline``, or an amount over ``decline_over``), a call that never
answers (``tok_timeout``), an outage (``failure_rate``), a slow network (``latency_ms``). It
also keeps what real gateways keep and sagas depend on: an idempotency record per
``Idempotency-Key`` (a retried call returns the first answer instead of authorizing again), and
it lists each order's authorizations so a test can assert no order was authorized twice.

All state lives in one :class:`SimulatorState` per application, so several simulators can run
in one process (one per test) without sharing anything.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

DECLINE_TOKEN = "tok_decline"
TIMEOUT_TOKEN = "tok_timeout"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# How long stopping waits for requests in flight; hung ``tok_timeout`` calls are released first.
SHUTDOWN_TIMEOUT = 5.0

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class SimulatorConfig:
    """The simulator's behaviour; the same config and requests always give the same answers."""

    decline_over: int = 1_000_000  # minor units
    failure_rate: float = 0.0  # the fraction of authorizations answered 503
    latency_ms: float = 0.0  # added before every answer
    seed: int = 0  # of the random draws deciding which authorizations fail

    def __post_init__(self) -> None:
        if self.decline_over < 0:
            raise ValueError(f"decline_over must be >= 0, not {self.decline_over!r}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within 0..1, not {self.failure_rate!r}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms!r}")


@dataclass(frozen=True, slots=True)
class _AuthorizationCall:
    """A validated authorization body; equality is what "the same request" means."""

    order_id: str
    amount: int
    currency: str
    token: str


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _IdempotencyRecord:
    call: _AuthorizationCall
    answer: _Answer


@dataclass(slots=True)
class _Payment:
    payment_id: str
    order_id: str
    amount: int
    currency: str
    status: str = "authorized"

    def as_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
        }


class _BadRequest(Exception):
    """A request the simulator refuses with 400; the message names the bad field."""


class SimulatorState:
    """The payments and idempotency records of one simulator application."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        self._payments: dict[str, _Payment] = {}
        self._by_order: dict[str, list[_Payment]] = {}
        self._idempotency: dict[str, _IdempotencyRecord] = {}
        # Set when the application shuts down: it releases the requests that never answer.
        self.stopping = asyncio.Event()

    def draws_failure(self) -> bool:
        """Whether this authorization is answered 503 (one seeded draw per authorization)."""
        return self._random.random() < self.config.failure_rate

    def first_call(self, key: str) -> _IdempotencyRecord | None:
        """The call first made under ``key`` and its answer; None if ``key`` is new."""
        return self._idempotency.get(key)

    def authorize(self, key: str, call: _AuthorizationCall) -> _Answer:
        """Decide ``call`` and remember the answer under ``key``."""
        if call.token == DECLINE_TOKEN:
            answer = _Answer(402, {"status": "declined", "reason": "card_declined"})
        elif call.amount > self.config.decline_over:
            answer = _Answer(402, {"status": "declined", "reason": "amount_over_limit"})
        else:
            payment = self._new_payment(call)
            answer = _Answer(201, {"status": "authorized", **payment.as_json()})
        self._idempotency[key] = _IdempotencyRecord(call, answer)
        return answer

    def payment(self, payment_id: str) -> _Payment | None:
        return self._payments.get(payment_id)

    def authorizations_of(self, order_id: str) -> list[_Payment]:
        return list(self._by_order.get(order_id, ()))

    def _new_payment(self, call: _AuthorizationCall) -> _Payment:
        payment_id = f"pay_{secrets.token_hex(12)}"
        while payment_id in self._payments:  # pragma: no cover - 96 random bits
            payment_id = f"pay_{secrets.token_hex(12)}"
        payment = _Payment(payment_id, call.order_id, call.amount, call.currency)
        self._payments[payment_id] = payment
        self._by_order.setdefault(call.order_id, []).append(payment)
        return payment


STATE = web.AppKey("payment_simulator_state", SimulatorState)


def create_simulator_app(config: SimulatorConfig) -> web.Application:
    """A fresh simulator with its own empty state."""
    app = web.Application(middlewares=[_latency])
    app[STATE] = SimulatorState(config)
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/v1/authorizations", _authorize)
    app.router.add_get("/v1/authorizations/{payment_id}", _get_payment)
    app.router.add_post("/v1/authorizations/{payment_id}/void", _void)
    app.router.add_get("/v1/orders/{order_id}/authorizations", _order_authorizations)
    app.on_shutdown.append(_release_hung_requests)
    return app


@asynccontextmanager
async def running(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve a simulator on ``host:port`` (0: a free port) and yield its base URL.

    Handlers are cancelled when their client disconnects, so a ``tok_timeout`` call ends with
    the client's timeout instead of lingering until shutdown.
    """
    runner = web.AppRunner(
        create_simulator_app(config),
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield _base_url(runner.addresses[0])
    finally:
        await runner.cleanup()


async def serve(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 7070) -> None:
    """Serve a simulator until cancelled."""
    async with running(config, host, port):
        await asyncio.Event().wait()


def _base_url(address: Any) -> str:
    """The URL of a listening socket's address: (host, port) or IPv6's (host, port, ...)."""
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@web.middleware
async def _latency(request: web.Request, handler: Handler) -> web.StreamResponse:
    latency_ms = request.app[STATE].config.latency_ms
    if latency_ms > 0:
        await asyncio.sleep(latency_ms / 1000)
    return await handler(request)


async def _release_hung_requests(app: web.Application) -> None:
    app[STATE].stopping.set()


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _authorize(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = request.headers.get("Idempotency-Key", "")
    try:
        _check_idempotency_key(key)
        call = _authorization_call(await request.text())
    except _BadRequest as error:
        return _json(_error_answer(400, str(error)))
    # Before any state change and never stored: a retry under the same key gets a fresh draw.
    if state.draws_failure():
        return _json(_error_answer(503, "unavailable"))
    first = state.first_call(key)
    if first is not None:
        if first.call != call:
            message = f"Idempotency-Key {key!r} was already used with a different request"
            return _json(_error_answer(422, message))
        return _json(first.answer, headers={"Idempotent-Replayed": "true"})
    if call.token == TIMEOUT_TOKEN:
        # Never answers: the client's timeout (its disconnect cancels this handler) ends it.
        await state.stopping.wait()
        return _json(_error_answer(503, "the simulator is shutting down"))
    return _json(state.authorize(key, call))


async def _get_payment(request: web.Request) -> web.Response:
    payment_id = request.match_info["payment_id"]
    payment = request.app[STATE].payment(payment_id)
    if payment is None:
        return _json(_error_answer(404, f"unknown payment {payment_id!r}"))
    return web.json_response(payment.as_json())


async def _void(request: web.Request) -> web.Response:
    """Void a payment; voiding it again answers 200 again, as compensation may be retried."""
    payment_id = request.match_info["payment_id"]
    payment = request.app[STATE].payment(payment_id)
    if payment is None:
        return _json(_error_answer(404, f"unknown payment {payment_id!r}"))
    payment.status = "voided"
    return web.json_response({"status": "voided", "payment_id": payment_id})


async def _order_authorizations(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    payments = request.app[STATE].authorizations_of(order_id)
    return web.json_response(
        {"order_id": order_id, "authorizations": [payment.as_json() for payment in payments]}
    )


def _check_idempotency_key(key: str) -> None:
    if not key.strip():
        raise _BadRequest("the Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise _BadRequest(
            f"the Idempotency-Key header is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )


def _authorization_call(text: str) -> _AuthorizationCall:
    """Validate an authorization body; the error names the first bad field."""
    try:
        data = json.loads(text)
    except ValueError:
        raise _BadRequest("the body must be JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    order_id, token = data.get("order_id"), data.get("token")
    amount, currency = data.get("amount"), data.get("currency")
    if not isinstance(order_id, str) or not order_id:
        raise _BadRequest("order_id must be a non-empty string")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise _BadRequest("amount must be a positive integer (minor units)")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _BadRequest('currency must be an ISO 4217 code such as "EUR"')
    if not isinstance(token, str) or not token:
        raise _BadRequest("token must be a non-empty string")
    return _AuthorizationCall(order_id, amount, currency, token)


def _error_answer(status: int, message: str) -> _Answer:
    return _Answer(status, {"error": message})


def _json(answer: _Answer, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=headers)

"""Payments: authorize an order's payment at the gateway once, void it when the saga says so.

The ``payments`` table remembers the gateway's answer per order, so a repeated
AuthorizePayment is answered from the table and never authorizes twice; the gateway also gets
an idempotency key per order, which covers a crash between its answer and the table write.

Every gateway call goes through the ``payment_gateway`` circuit breaker. When the gateway is
down (or the breaker is open) the order is not declined: the saga is told PaymentUnavailable
and asks again later.
"""

from __future__ import annotations

from typing import Any

from faust.types import EventT, StreamT

from orderflow import schemas, tables, topics
from orderflow.app import app
from orderflow.observability import metrics
from orderflow.payments.gateway import (
    AuthorizationRequest,
    GatewayTimeout,
    GatewayUnavailable,
    HttpPaymentGateway,
    PaymentGateway,
)
from orderflow.resilience.breaker import BreakerOpen, CircuitBreaker
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError

AUTHORIZED = "authorized"
DECLINED = "declined"
VOIDED = "voided"
BREAKER = "payment_gateway"
UNAVAILABLE_RETRY_AFTER = 2.0  # seconds, when the breaker does not say


async def _reply(command: schemas.AuthorizePayment, record: dict[str, Any]) -> None:
    envelope = schemas.caused_by(command)
    reply: schemas.Message
    if record["status"] == AUTHORIZED:
        reply = schemas.PaymentAuthorized(
            **envelope, order_id=command.order_id, payment_id=record["payment_id"]
        )
    else:
        reply = schemas.PaymentDeclined(
            **envelope, order_id=command.order_id, reason=record["reason"]
        )
    await topics.publish(topics.saga_replies, command.order_id, reply)


async def _unavailable(command: schemas.AuthorizePayment, reason: str, retry_after: float) -> None:
    metrics.PAYMENTS.labels("unavailable").inc()
    reply = schemas.PaymentUnavailable(
        **schemas.caused_by(command),
        order_id=command.order_id,
        reason=reason,
        retry_after=max(retry_after, 0.1),
    )
    await topics.publish(topics.saga_replies, command.order_id, reply)


async def authorize(
    gateway: PaymentGateway, breaker: CircuitBreaker, command: schemas.AuthorizePayment
) -> None:
    record = tables.payments.get(command.order_id)
    if record is None:
        request = AuthorizationRequest(
            order_id=command.order_id,
            amount=command.amount,
            currency=command.currency,
            token=command.token,
            idempotency_key=f"authorize-{command.order_id}",
        )
        try:
            answer = await breaker.call(lambda: gateway.authorize(request))
        except BreakerOpen as open_breaker:
            await _unavailable(command, "gateway circuit open", open_breaker.retry_after)
            return
        except GatewayTimeout:
            # The outcome is unknown: the saga rejects the order and voids what may exist.
            record = {"status": DECLINED, "payment_id": None, "reason": "gateway_timeout"}
        except GatewayUnavailable as error:
            await _unavailable(command, f"gateway unavailable: {error}", UNAVAILABLE_RETRY_AFTER)
            return
        else:
            if answer.approved:
                record = {"status": AUTHORIZED, "payment_id": answer.payment_id, "reason": None}
            else:
                record = {"status": DECLINED, "payment_id": None, "reason": answer.decline_reason}
        tables.payments[command.order_id] = record
        metrics.PAYMENTS.labels(record["status"]).inc()
    elif record["status"] == VOIDED:
        record = {**record, "reason": "voided"}
    await _reply(command, record)


async def void(
    gateway: PaymentGateway, breaker: CircuitBreaker, command: schemas.VoidPayment
) -> None:
    record = tables.payments.get(command.order_id)
    if record is not None and record["status"] == AUTHORIZED:
        # A failure here is transient: the message is retried, then dead-lettered for replay.
        await breaker.call(
            lambda: gateway.void(record["payment_id"], idempotency_key=f"void-{command.order_id}")
        )
        tables.payments[command.order_id] = {**record, "status": VOIDED, "reason": command.reason}
    elif record is None:
        # Nothing authorized yet: remember the void so a late AuthorizePayment is refused.
        tables.payments[command.order_id] = {
            "status": VOIDED,
            "payment_id": None,
            "reason": command.reason,
        }


@app.agent(topics.payments_commands)
async def payment_processor(stream: StreamT[bytes]) -> None:
    settings = app.settings
    gateway = HttpPaymentGateway(settings.payment_gateway_url, timeout=settings.payment_timeout)
    breaker = app.breaker(BREAKER)

    async def handle(command: schemas.Message, event: EventT[Any]) -> None:
        match command:
            case schemas.AuthorizePayment():
                await authorize(gateway, breaker, command)
            case schemas.VoidPayment():
                await void(gateway, breaker, command)
            case _:
                raise SchemaError(f"{type(command).__name__} is not a payments command")

    try:
        await process(app, stream, handle, "payments")
    finally:
        await gateway.close()

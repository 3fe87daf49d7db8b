"""Payments: authorize an order's payment at the gateway once, void it when the saga says so.

The ``payments`` table remembers the gateway's answer per order, so a repeated
AuthorizePayment is answered from the table and never authorizes twice; the gateway also gets
an idempotency key per order, which covers a crash between its answer and the table write.

Every gateway call goes through the ``payment_gateway`` circuit breaker. When the gateway is
down (or the breaker is open) the order is not declined: the saga is told PaymentUnavailable
and asks again later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.domain import payments
from orderflow.domain.payments import Payment
from orderflow.observability import metrics
from orderflow.payments.gateway import (
    AuthorizationRequest,
    GatewayTimeout,
    GatewayUnavailable,
    HttpPaymentGateway,
    PaymentGateway,
)
from orderflow.resilience.breaker import BreakerOpen, CircuitBreaker
from orderflow.resilience.handling import process_by_key
from orderflow.schemas.codec import SchemaError
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

BREAKER = "payment_gateway"
UNAVAILABLE_RETRY_AFTER = 2.0  # seconds, when the breaker does not say


class PaymentProcessor:
    """The payments handler: the gateway behind its breaker, the payments table, the bus."""

    def __init__(
        self,
        gateway: PaymentGateway,
        breaker: CircuitBreaker,
        payments: TypedTable[Payment],
        bus: Bus,
    ) -> None:
        self.gateway = gateway
        self.breaker = breaker
        self.payments = payments
        self.bus = bus

    async def __call__(self, command: schemas.Message, event: EventT[Any]) -> None:
        match command:
            case schemas.AuthorizePayment():
                await self.authorize(command)
            case schemas.VoidPayment():
                await self.void(command)
            case _:
                raise SchemaError(f"{type(command).__name__} is not a payments command")

    async def authorize(self, command: schemas.AuthorizePayment) -> None:
        payment = self.payments.get(command.order_id)
        if payment is not None:
            await self._reply(command, payments.answer_again(payment))
            return
        request = AuthorizationRequest(
            order_id=command.order_id,
            amount=command.amount,
            currency=command.currency,
            token=command.token,
            idempotency_key=f"authorize-{command.order_id}",
        )
        try:
            answer = await self.breaker.call(lambda: self.gateway.authorize(request))
        except BreakerOpen as open_breaker:
            await self._unavailable(command, "gateway circuit open", open_breaker.retry_after)
            return
        except GatewayUnavailable as error:
            reason = f"gateway unavailable: {error}"
            await self._unavailable(command, reason, UNAVAILABLE_RETRY_AFTER)
            return
        except GatewayTimeout:
            payment = payments.declined(payments.GATEWAY_TIMEOUT)
        else:
            if answer.approved and answer.payment_id is not None:  # the gateway checks both
                payment = payments.authorized(answer.payment_id)
            else:
                payment = payments.declined(answer.decline_reason)
        self.payments[command.order_id] = payment
        metrics.PAYMENTS.labels(payment.status.value).inc()
        await self._reply(command, payment)

    async def void(self, command: schemas.VoidPayment) -> None:
        decision = payments.void(self.payments.get(command.order_id), command.reason)
        if (payment_id := decision.at_gateway) is not None:
            # A failure here is transient: the message is retried, then dead-lettered.
            key = f"void-{command.order_id}"
            await self.breaker.call(lambda: self.gateway.void(payment_id, idempotency_key=key))
        if decision.payment is not None:
            self.payments[command.order_id] = decision.payment

    async def _reply(self, command: schemas.AuthorizePayment, payment: Payment) -> None:
        envelope = schemas.caused_by(command)
        reply: schemas.Message
        if payment.authorized:
            reply = schemas.PaymentAuthorized(
                **envelope, order_id=command.order_id, payment_id=payment.payment_id
            )
        else:
            reply = schemas.PaymentDeclined(
                **envelope, order_id=command.order_id, reason=payment.reason
            )
        await publish(self.bus.saga_replies, command.order_id, reply)

    async def _unavailable(
        self, command: schemas.AuthorizePayment, reason: str, retry_after: float
    ) -> None:
        metrics.PAYMENTS.labels("unavailable").inc()
        reply = schemas.PaymentUnavailable(
            **schemas.caused_by(command),
            order_id=command.order_id,
            reason=reason,
            retry_after=max(retry_after, 0.1),
        )
        await publish(self.bus.saga_replies, command.order_id, reply)


def register(app: OrderflowApp) -> None:
    settings = app.settings

    @app.agent(app.bus.payments_commands, name=f"{__name__}.payment_processor")
    async def payment_processor(stream: StreamT[bytes]) -> None:
        gateway = HttpPaymentGateway(settings.payment_gateway_url, timeout=settings.payment_timeout)
        processor = PaymentProcessor(gateway, app.breaker(BREAKER), app.data.payments, app.bus)
        try:
            # Gateway calls of different orders overlap; one order's commands stay in order.
            await process_by_key(app, stream, processor, "payments")
        finally:
            await gateway.close()

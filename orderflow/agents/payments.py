"""Payments: authorize an order's payment at the gateway once, void it when the saga says so.

The ``payments`` table remembers the gateway's answer per order, so a repeated
AuthorizePayment is answered from the table and never authorizes twice; the gateway also gets
an idempotency key per order, which covers a crash between its answer and the table write.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.types import StreamT

from orderflow import schemas, tables, topics
from orderflow.app import app
from orderflow.payments.gateway import (
    AuthorizationRequest,
    GatewayError,
    GatewayTimeout,
    HttpPaymentGateway,
    PaymentGateway,
)

log = logging.getLogger(__name__)

AUTHORIZED = "authorized"
DECLINED = "declined"
VOIDED = "voided"


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
    await topics.saga_replies.send(key=command.order_id, value=reply)


async def authorize(gateway: PaymentGateway, command: schemas.AuthorizePayment) -> None:
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
            answer = await gateway.authorize(request)
        except GatewayTimeout:
            # The outcome is unknown: the saga rejects the order and voids what may exist.
            record = {"status": DECLINED, "payment_id": None, "reason": "gateway_timeout"}
        except GatewayError as error:
            record = {"status": DECLINED, "payment_id": None, "reason": "gateway_unavailable"}
            log.warning("payments: gateway failed for %s: %s", command.order_id, error)
        else:
            if answer.approved:
                record = {"status": AUTHORIZED, "payment_id": answer.payment_id, "reason": None}
            else:
                record = {"status": DECLINED, "payment_id": None, "reason": answer.decline_reason}
        tables.payments[command.order_id] = record
    elif record["status"] == VOIDED:
        record = {**record, "reason": "voided"}
    await _reply(command, record)


async def void(gateway: PaymentGateway, command: schemas.VoidPayment) -> None:
    record = tables.payments.get(command.order_id)
    if record is not None and record["status"] == AUTHORIZED:
        await gateway.void(record["payment_id"], idempotency_key=f"void-{command.order_id}")
        tables.payments[command.order_id] = {**record, "status": VOIDED, "reason": command.reason}
    elif record is None:
        # Nothing authorized yet: remember the void so a late AuthorizePayment is refused.
        tables.payments[command.order_id] = {
            "status": VOIDED,
            "payment_id": None,
            "reason": command.reason,
        }


@app.agent(topics.payments_commands)
async def payment_processor(stream: StreamT[schemas.Message]) -> None:
    settings = app.settings
    gateway = HttpPaymentGateway(settings.payment_gateway_url, timeout=settings.payment_timeout)
    try:
        async for command in stream:
            try:
                match command:
                    case schemas.AuthorizePayment():
                        await authorize(gateway, command)
                    case schemas.VoidPayment():
                        await void(gateway, command)
                    case _:
                        log.warning("payments: ignoring %s", type(command).__name__)
            except Exception:
                log.exception("payments: failed on %s", type(command).__name__)
    finally:
        await gateway.close()

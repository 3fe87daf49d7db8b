"""An order's payment, as the gateway answered it, and what a repeat or a void does to it.

One record per order (the ``payments`` table). A repeated AuthorizePayment is answered from
it and never authorizes twice; a void before any authorization is remembered, so a late
AuthorizePayment is refused instead of charging a closed order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

# An answer that never came: the outcome at the gateway is unknown, so the saga rejects the
# order and voids whatever may exist there.
GATEWAY_TIMEOUT = "gateway_timeout"
# Why an AuthorizePayment for a voided order is declined.
VOIDED_REASON = "voided"


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Payment:
    status: PaymentStatus
    payment_id: str | None = None
    reason: str | None = None

    @property
    def authorized(self) -> bool:
        return self.status is PaymentStatus.AUTHORIZED


def authorized(payment_id: str) -> Payment:
    return Payment(PaymentStatus.AUTHORIZED, payment_id)


def declined(reason: str | None) -> Payment:
    return Payment(PaymentStatus.DECLINED, reason=reason)


def answer_again(payment: Payment) -> Payment:
    """What a repeated AuthorizePayment is answered with: the record itself, or a decline for
    a voided order."""
    if payment.status is PaymentStatus.VOIDED:
        return replace(payment, reason=VOIDED_REASON)
    return payment


@dataclass(frozen=True, slots=True)
class Void:
    """What a VoidPayment does: the gateway payment to void first (if any), then the record."""

    at_gateway: str | None
    payment: Payment | None  # None: nothing changes


def void(payment: Payment | None, reason: str) -> Void:
    if payment is None:
        return Void(None, Payment(PaymentStatus.VOIDED, reason=reason))
    if payment.authorized:
        voided = replace(payment, status=PaymentStatus.VOIDED, reason=reason)
        return Void(payment.payment_id, voided)
    return Void(None, None)  # declined or voided already: nothing to undo

"""The payment record's rules (orderflow.domain.payments): repeats and voids."""

from __future__ import annotations

import pytest

from orderflow.domain import payments
from orderflow.domain.payments import Payment, PaymentStatus
from orderflow.tables import codecs


def test_a_repeated_authorization_is_answered_from_the_record() -> None:
    approved = payments.authorized("pay-1")
    assert payments.answer_again(approved) == approved
    declined = payments.declined("card_declined")
    assert payments.answer_again(declined) == declined


def test_an_authorization_after_a_void_is_declined_as_voided() -> None:
    voided = Payment(PaymentStatus.VOIDED, None, "order cancelled")
    answer = payments.answer_again(voided)
    assert not answer.authorized
    assert answer.reason == payments.VOIDED_REASON


def test_a_void_before_any_authorization_is_remembered_without_a_gateway_call() -> None:
    decision = payments.void(None, "customer_request")
    assert decision.at_gateway is None
    assert decision.payment == Payment(PaymentStatus.VOIDED, None, "customer_request")


def test_voiding_an_authorized_payment_voids_it_at_the_gateway_first() -> None:
    decision = payments.void(payments.authorized("pay-7"), "out_of_stock")
    assert decision.at_gateway == "pay-7"
    assert decision.payment == Payment(PaymentStatus.VOIDED, "pay-7", "out_of_stock")


@pytest.mark.parametrize(
    "payment",
    [payments.declined("card_declined"), Payment(PaymentStatus.VOIDED, "pay-2", "earlier")],
)
def test_voiding_a_declined_or_voided_payment_changes_nothing(payment: Payment) -> None:
    assert payments.void(payment, "again") == payments.Void(None, None)


def test_the_table_keeps_the_record_as_the_json_it_always_was() -> None:
    payment = payments.authorized("pay-3")
    raw = codecs.encode(payment)
    assert raw == b'{"status":"authorized","payment_id":"pay-3","reason":null}'
    assert codecs.decode_payment(raw) == payment

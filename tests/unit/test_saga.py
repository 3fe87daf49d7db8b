"""The pure order saga: every (status x input) pair, timeouts, duplicates, versions, history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from orderflow.domain.orders import Line, NewOrder
from orderflow.domain.saga import (
    Authorize,
    Authorized,
    Cancel,
    Cancelled,
    Confirmed,
    Decision,
    Declined,
    Expired,
    Input,
    OutOfStock,
    Output,
    Placed,
    Position,
    Rejected,
    Release,
    Reserve,
    Reserved,
    SagaState,
    Start,
    Status,
    Transition,
    Void,
    decide,
    handle,
    pending_outputs,
)

TIMEOUT = 30.0
T0 = 1_000.0
NOW = T0 + 10.0  # when the table's inputs arrive: before every deadline
ORDER_ID = "o-1"
ORDER = NewOrder(
    customer_id="c-1",
    currency="EUR",
    lines=(Line("SKU-1", 5, 250), Line("SKU-2", 1, 1_000)),
    payment_token="tok_visa",
)
TOTAL = 5 * 250 + 1_000
RELEASE_ALL = (Release("SKU-1"), Release("SKU-2"))
OOS_DETAIL = "SKU-1: requested 5, available 2"


def _apply(state: SagaState | None, message_id: str, message: Input, now: float) -> SagaState:
    decision = handle(state, message_id, message, now, TIMEOUT)
    assert decision.state is not None
    assert decision.state is not state, f"{message} changed nothing"
    return decision.state


def reserving() -> SagaState:
    return _apply(None, "m-start", Start(ORDER_ID, ORDER), T0)


def authorizing() -> SagaState:
    state = _apply(reserving(), "m-r1", Reserved("SKU-1"), T0 + 1)
    return _apply(state, "m-r2", Reserved("SKU-2"), T0 + 2)


def confirmed() -> SagaState:
    return _apply(authorizing(), "m-auth", Authorized("pay-1"), T0 + 3)


def rejected() -> SagaState:
    return _apply(reserving(), "m-oos", OutOfStock("SKU-1", 5, 2), T0 + 1)


def cancelled() -> SagaState:
    return _apply(reserving(), "m-cancel", Cancel("customer"), T0 + 1)


BUILD = {
    Status.RESERVING: reserving,
    Status.AUTHORIZING: authorizing,
    Status.CONFIRMED: confirmed,
    Status.REJECTED: rejected,
    Status.CANCELLED: cancelled,
}


# --- the whole table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    status: Status
    message: Input
    next_status: Status | None  # None: the state is returned unchanged (the same object)
    outputs: tuple[Output, ...]


START = Start(ORDER_ID, ORDER)
CANCEL = Cancel("customer")
RESERVED_1 = Reserved("SKU-1")
RESERVED_OTHER = Reserved("SKU-9")
OUT_OF_STOCK = OutOfStock("SKU-1", 5, 2)
AUTHORIZED = Authorized("pay-2")
DECLINED = Declined("insufficient_funds")
STALE_EXPIRED = Expired(T0 - 1)  # a deadline no state of this saga ever had

CASES = [
    # RESERVING, version 1
    Case(Status.RESERVING, START, None, ()),
    Case(Status.RESERVING, CANCEL, Status.CANCELLED, (*RELEASE_ALL, Cancelled("customer", 2))),
    Case(Status.RESERVING, RESERVED_1, Status.RESERVING, ()),
    Case(Status.RESERVING, RESERVED_OTHER, None, ()),
    Case(
        Status.RESERVING,
        OUT_OF_STOCK,
        Status.REJECTED,
        (*RELEASE_ALL, Rejected("out_of_stock", OOS_DETAIL, 2)),
    ),
    Case(Status.RESERVING, AUTHORIZED, None, ()),
    Case(Status.RESERVING, DECLINED, None, ()),
    Case(Status.RESERVING, STALE_EXPIRED, None, ()),
    # AUTHORIZING, version 3
    Case(Status.AUTHORIZING, START, None, ()),
    Case(
        Status.AUTHORIZING,
        CANCEL,
        Status.CANCELLED,
        (*RELEASE_ALL, Void("customer"), Cancelled("customer", 4)),
    ),
    Case(Status.AUTHORIZING, RESERVED_1, None, ()),
    Case(Status.AUTHORIZING, RESERVED_OTHER, None, ()),
    Case(Status.AUTHORIZING, OUT_OF_STOCK, None, ()),
    Case(Status.AUTHORIZING, AUTHORIZED, Status.CONFIRMED, (Confirmed("pay-2", 4),)),
    Case(
        Status.AUTHORIZING,
        DECLINED,
        Status.REJECTED,
        (
            *RELEASE_ALL,
            Void("payment_declined"),
            Rejected("payment_declined", "insufficient_funds", 4),
        ),
    ),
    Case(Status.AUTHORIZING, STALE_EXPIRED, None, ()),
    # CONFIRMED, version 4
    Case(Status.CONFIRMED, START, None, ()),
    Case(
        Status.CONFIRMED,
        CANCEL,
        Status.CANCELLED,
        (*RELEASE_ALL, Void("customer"), Cancelled("customer", 5)),
    ),
    Case(Status.CONFIRMED, RESERVED_1, None, ()),
    Case(Status.CONFIRMED, RESERVED_OTHER, None, ()),
    Case(Status.CONFIRMED, OUT_OF_STOCK, None, ()),
    Case(Status.CONFIRMED, AUTHORIZED, None, ()),
    Case(Status.CONFIRMED, DECLINED, None, ()),
    Case(Status.CONFIRMED, STALE_EXPIRED, None, ()),
    # REJECTED and CANCELLED, version 2: late replies are compensated at once
    *(
        case
        for final in (Status.REJECTED, Status.CANCELLED)
        for case in (
            Case(final, START, None, ()),
            Case(final, CANCEL, None, ()),
            Case(final, RESERVED_1, None, (Release("SKU-1"),)),
            Case(final, RESERVED_OTHER, None, (Release("SKU-9"),)),
            Case(final, OUT_OF_STOCK, None, ()),
            Case(final, AUTHORIZED, None, (Void("order already closed"),)),
            Case(final, DECLINED, None, ()),
            Case(final, STALE_EXPIRED, None, ()),
        )
    ),
]


def test_the_table_covers_every_status_and_input_kind() -> None:
    pairs = {(case.status, type(case.message)) for case in CASES}
    kinds = {Start, Cancel, Reserved, OutOfStock, Authorized, Declined, Expired}
    assert pairs == {(status, kind) for status in Status for kind in kinds}


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.status}-{type(c.message).__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_decide_table(case: Case) -> None:
    state = BUILD[case.status]()
    decision = decide(state, case.message, NOW, TIMEOUT)
    assert tuple(decision.outputs) == case.outputs
    if case.next_status is None:
        assert decision.state is state
        return
    assert decision.state is not None
    assert decision.state is not state
    assert decision.state.status is case.next_status
    assert decision.state.version == state.version + 1
    assert decision.state.seen == state.seen  # decide does not remember ids; handle does


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.status}-{type(c.message).__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_handle_table(case: Case) -> None:
    state = BUILD[case.status]()
    decision = handle(state, "m-new", case.message, NOW, TIMEOUT)
    assert tuple(decision.outputs) == case.outputs
    if case.next_status is None:
        assert decision.state is state
        assert "m-new" not in state.seen
        return
    new = decision.state
    assert new is not None
    assert new.status is case.next_status
    assert new.seen == state.seen | {"m-new"}
    assert new.version == state.version + 1
    assert new.order == state.order
    assert new.order_id == ORDER_ID
    if new.status is state.status:
        assert new.history == state.history
    else:
        assert new.history[:-1] == state.history
        assert new.history[-1].status is new.status
        assert new.history[-1].at == NOW
    if new.status in (Status.REJECTED, Status.CANCELLED, Status.CONFIRMED):
        assert new.deadline is None
        assert new.outcome_version == new.version
        # What a redelivery re-sends ends with the same outcome event the transition sent.
        assert pending_outputs(new)[-1] == case.outputs[-1]


# --- starting --------------------------------------------------------------------------------


def test_start_creates_the_saga_and_reserves_every_line() -> None:
    decision = handle(None, "m-start", Start(ORDER_ID, ORDER), T0, TIMEOUT)
    assert tuple(decision.outputs) == (
        Placed(version=1),
        Reserve("SKU-1", 5),
        Reserve("SKU-2", 1),
    )
    state = decision.state
    assert state == SagaState(
        order_id=ORDER_ID,
        order=ORDER,
        status=Status.RESERVING,
        awaiting=frozenset({"SKU-1", "SKU-2"}),
        deadline=T0 + TIMEOUT,
        version=1,
        history=(Transition(T0, Status.RESERVING, "order placed"),),
        seen=frozenset({"m-start"}),
    )
    assert state.lines == ORDER.lines
    assert state.payment_id is None
    assert state.reason is None
    assert state.outcome_version is None


@pytest.mark.parametrize(
    "message",
    [
        CANCEL,
        RESERVED_1,
        OUT_OF_STOCK,
        AUTHORIZED,
        DECLINED,
        Expired(T0),
    ],
)
def test_any_input_but_start_for_no_saga_gives_no_state(message: Input) -> None:
    assert handle(None, "m-1", message, NOW, TIMEOUT) == Decision(None)
    assert decide(None, message, NOW, TIMEOUT) == Decision(None)


@pytest.mark.parametrize("status", list(Status))
def test_start_on_an_existing_saga_is_ignored(status: Status) -> None:
    state = BUILD[status]()
    other = NewOrder("c-2", "USD", (Line("SKU-3", 1, 1),), "tok_other")
    decision = handle(state, "m-start-again", Start(ORDER_ID, other), NOW, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == ()
    assert state.order == ORDER


# --- reserving -------------------------------------------------------------------------------


def test_partial_reservation_waits_for_the_other_lines() -> None:
    state = reserving()
    decision = handle(state, "m-r1", Reserved("SKU-1"), T0 + 1, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == ()
    assert new.status is Status.RESERVING
    assert new.awaiting == frozenset({"SKU-2"})
    assert new.deadline == T0 + TIMEOUT  # the step's deadline is not moved
    assert new.history == state.history
    assert new.version == 2


@pytest.mark.parametrize("order", [("SKU-1", "SKU-2"), ("SKU-2", "SKU-1")])
def test_last_reservation_moves_to_authorizing_in_any_order(order: tuple[str, str]) -> None:
    state = _apply(reserving(), "m-a", Reserved(order[0]), T0 + 1)
    decision = handle(state, "m-b", Reserved(order[1]), T0 + 2, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == (Authorize(TOTAL, "EUR", "tok_visa"),)
    assert new.status is Status.AUTHORIZING
    assert new.awaiting == frozenset()
    assert new.deadline == T0 + 2 + TIMEOUT
    assert new.history[-1] == Transition(T0 + 2, Status.AUTHORIZING, "stock reserved")
    assert new.version == 3


def test_out_of_stock_rejects_with_the_detail() -> None:
    state = _apply(reserving(), "m-r2", Reserved("SKU-2"), T0 + 1)
    decision = handle(state, "m-oos", OutOfStock("SKU-1", 5, 2), T0 + 4, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == (*RELEASE_ALL, Rejected("out_of_stock", OOS_DETAIL, 3))
    assert not any(isinstance(o, Void) for o in decision.outputs)
    assert new.status is Status.REJECTED
    assert new.reason == "out_of_stock"
    assert new.detail == OOS_DETAIL
    assert new.outcome_version == 3
    assert new.deadline is None
    assert new.history[-1] == Transition(
        T0 + 4, Status.REJECTED, "out_of_stock: SKU-1: requested 5, available 2"
    )


def test_out_of_stock_detail_names_the_reported_sku_and_numbers() -> None:
    decision = decide(reserving(), OutOfStock("SKU-2", 7, 0), NOW, TIMEOUT)
    assert decision.outputs[-1] == Rejected("out_of_stock", "SKU-2: requested 7, available 0", 2)


# --- authorizing and confirmed ---------------------------------------------------------------


def test_authorized_confirms_with_the_payment() -> None:
    decision = handle(authorizing(), "m-auth", Authorized("pay-1"), T0 + 3, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == (Confirmed("pay-1", 4),)
    assert new.status is Status.CONFIRMED
    assert new.payment_id == "pay-1"
    assert new.deadline is None
    assert new.outcome_version == 4
    assert new.history[-1] == Transition(T0 + 3, Status.CONFIRMED, "payment authorized")


def test_declined_rejects_and_voids() -> None:
    decision = handle(authorizing(), "m-dec", Declined("card_expired"), T0 + 3, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == (
        *RELEASE_ALL,
        Void("payment_declined"),
        Rejected("payment_declined", "card_expired", 4),
    )
    assert new.status is Status.REJECTED
    assert (new.reason, new.detail) == ("payment_declined", "card_expired")
    assert new.history[-1] == Transition(T0 + 3, Status.REJECTED, "payment_declined: card_expired")


def test_declined_without_a_reason_keeps_an_empty_detail() -> None:
    decision = decide(authorizing(), Declined(""), NOW, TIMEOUT)
    new = decision.state
    assert new is not None
    assert decision.outputs[-1] == Rejected("payment_declined", "", 4)
    assert new.detail is None
    assert new.history[-1].cause == "payment_declined"
    assert pending_outputs(new)[-1] == Rejected("payment_declined", "", 4)


def test_cancelling_a_confirmed_order_releases_voids_and_keeps_the_payment_id() -> None:
    decision = handle(confirmed(), "m-cancel", Cancel("changed my mind"), T0 + 9, TIMEOUT)
    new = decision.state
    assert new is not None
    assert tuple(decision.outputs) == (
        *RELEASE_ALL,
        Void("changed my mind"),
        Cancelled("changed my mind", 5),
    )
    assert new.status is Status.CANCELLED
    assert new.payment_id == "pay-1"
    assert new.reason == "changed my mind"
    assert new.detail is None
    assert new.history[-1] == Transition(T0 + 9, Status.CANCELLED, "changed my mind")


def test_cancel_while_reserving_does_not_void() -> None:
    decision = decide(reserving(), Cancel("customer"), NOW, TIMEOUT)
    assert not any(isinstance(o, Void) for o in decision.outputs)
    assert decision.state is not None
    assert decision.state.status is Status.CANCELLED


# --- late replies after the saga closed -------------------------------------------------------


@pytest.mark.parametrize("final", [Status.REJECTED, Status.CANCELLED])
def test_late_reserved_releases_that_sku_every_time(final: Status) -> None:
    state = BUILD[final]()
    for _ in range(2):  # not remembered, so a redelivery releases again
        decision = handle(state, "m-late", Reserved("SKU-2"), NOW, TIMEOUT)
        assert decision.state is state
        assert tuple(decision.outputs) == (Release("SKU-2"),)
    assert "m-late" not in state.seen


@pytest.mark.parametrize("final", [Status.REJECTED, Status.CANCELLED])
def test_late_authorized_voids(final: Status) -> None:
    state = BUILD[final]()
    decision = handle(state, "m-late", Authorized("pay-9"), NOW, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == (Void("order already closed"),)
    assert state.payment_id is None


def test_late_authorized_after_timeout_in_authorizing_voids() -> None:
    state = authorizing()
    timed_out = _apply(state, "m-exp", Expired(state.deadline or 0), state.deadline or 0)
    decision = handle(timed_out, "m-late-auth", Authorized("pay-1"), NOW + 100, TIMEOUT)
    assert decision.state is timed_out
    assert tuple(decision.outputs) == (Void("order already closed"),)


# --- timeouts --------------------------------------------------------------------------------


def test_matching_expired_while_reserving_rejects_without_void() -> None:
    state = reserving()
    deadline = T0 + TIMEOUT
    decision = handle(state, "m-exp", Expired(deadline), deadline, TIMEOUT)
    new = decision.state
    assert new is not None
    detail = "no answer to the stock reservation step within 30s"
    assert tuple(decision.outputs) == (*RELEASE_ALL, Rejected("timeout", detail, 2))
    assert new.status is Status.REJECTED
    assert (new.reason, new.detail) == ("timeout", detail)
    assert new.history[-1] == Transition(deadline, Status.REJECTED, f"timeout: {detail}")
    assert "m-exp" in new.seen


def test_matching_expired_while_authorizing_rejects_and_voids() -> None:
    state = authorizing()
    deadline = T0 + 2 + TIMEOUT
    assert state.deadline == deadline
    decision = handle(state, "m-exp", Expired(deadline), deadline + 5, TIMEOUT)
    new = decision.state
    assert new is not None
    detail = "no answer to the payment step within 30s"
    assert tuple(decision.outputs) == (
        *RELEASE_ALL,
        Void("timeout"),
        Rejected("timeout", detail, 4),
    )
    assert new.status is Status.REJECTED
    assert new.history[-1].at == deadline + 5


def _expire(
    state: SagaState, message_id: str, attempts: int = 3
) -> tuple[SagaState, tuple[Output, ...]]:
    deadline = state.deadline or 0
    decision = handle(
        state, message_id, Expired(deadline), deadline, TIMEOUT, step_attempts=attempts
    )
    assert decision.state is not None
    return decision.state, tuple(decision.outputs)


def test_a_reservation_step_is_asked_again_for_the_lines_still_awaited() -> None:
    state = _apply(reserving(), "m-r1", RESERVED_1, T0 + 1)
    asked, outputs = _expire(state, "m-exp-1")
    assert outputs == (Reserve("SKU-2", 1),)
    assert asked.status is Status.RESERVING
    assert asked.deadline == T0 + TIMEOUT + TIMEOUT
    assert (asked.step_asks, asked.version) == (2, state.version + 1)
    assert asked.awaiting == frozenset({"SKU-2"})


def test_a_payment_step_is_asked_again_with_the_same_authorization() -> None:
    asked, outputs = _expire(authorizing(), "m-exp-1")
    assert outputs == (Authorize(TOTAL, "EUR", "tok_visa"),)
    assert (asked.status, asked.step_asks) == (Status.AUTHORIZING, 2)


def test_the_last_ask_unanswered_rejects_saying_how_long_it_waited() -> None:
    state = reserving()
    for n in range(2):
        state, _ = _expire(state, f"m-exp-{n}")
    closed, outputs = _expire(state, "m-exp-last")
    detail = "no answer to the stock reservation step within 90s (asked 3 times)"
    assert outputs == (*RELEASE_ALL, Rejected("timeout", detail, state.version + 1))
    assert closed.status is Status.REJECTED


def test_an_answer_after_an_ask_moves_on_and_the_next_step_starts_its_own_count() -> None:
    asked, _ = _expire(reserving(), "m-exp-1")
    state = _apply(asked, "m-r1", RESERVED_1, asked.deadline or 0)
    state = _apply(state, "m-r2", Reserved("SKU-2"), asked.deadline or 0)
    assert (state.status, state.step_asks) == (Status.AUTHORIZING, 1)
    stale = handle(
        state, "m-stale", Expired(asked.deadline or 0), T0 + 999, TIMEOUT, step_attempts=3
    )
    assert stale.state is state  # the old step's deadline changes nothing
    assert not stale.outputs


def test_a_redelivered_ask_is_not_asked_twice() -> None:
    asked, _ = _expire(reserving(), "m-exp-1")
    again = handle(asked, "m-exp-1", Expired(T0 + TIMEOUT), T0 + TIMEOUT, TIMEOUT, step_attempts=3)
    assert again.state is asked
    assert asked.step_asks == 2


def test_expired_detail_formats_the_step_timeout() -> None:
    state = reserving()
    deadline = state.deadline or 0
    decision = decide(state, Expired(deadline), deadline, 2.5)
    assert decision.outputs[-1] == Rejected(
        "timeout", "no answer to the stock reservation step within 2.5s", 2
    )


@pytest.mark.parametrize("status", [Status.RESERVING, Status.AUTHORIZING])
def test_expired_before_its_deadline_is_ignored(status: Status) -> None:
    state = BUILD[status]()
    deadline = state.deadline
    assert deadline is not None
    decision = handle(state, "m-exp", Expired(deadline), deadline - 0.001, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == ()
    assert "m-exp" not in state.seen


def test_expired_for_the_reserving_step_is_stale_once_authorizing() -> None:
    state = authorizing()
    reserving_deadline = T0 + TIMEOUT
    assert state.deadline != reserving_deadline
    decision = handle(state, "m-exp", Expired(reserving_deadline), T0 + 1_000, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == ()


@pytest.mark.parametrize("status", [Status.CONFIRMED, Status.REJECTED, Status.CANCELLED])
def test_expired_after_the_saga_settled_is_ignored(status: Status) -> None:
    state = BUILD[status]()
    for deadline in (T0 + TIMEOUT, T0 + 2 + TIMEOUT):
        decision = handle(state, "m-exp", Expired(deadline), T0 + 1_000, TIMEOUT)
        assert decision.state is state
        assert tuple(decision.outputs) == ()


# --- duplicates ------------------------------------------------------------------------------

PENDING = {
    Status.RESERVING: (Placed(1), Reserve("SKU-1", 5), Reserve("SKU-2", 1)),
    Status.AUTHORIZING: (Placed(1), Authorize(TOTAL, "EUR", "tok_visa")),
    Status.CONFIRMED: (Placed(1), Confirmed("pay-1", 4)),
    Status.REJECTED: (
        Placed(1),
        *RELEASE_ALL,
        Void("order closed"),
        Rejected("out_of_stock", OOS_DETAIL, 2),
    ),
    Status.CANCELLED: (Placed(1), *RELEASE_ALL, Void("order closed"), Cancelled("customer", 2)),
}


@pytest.mark.parametrize("status", list(Status))
def test_pending_outputs_per_status(status: Status) -> None:
    assert pending_outputs(BUILD[status]()) == PENDING[status]


def test_pending_outputs_while_reserving_only_reserve_what_is_awaited() -> None:
    state = _apply(reserving(), "m-r1", Reserved("SKU-1"), T0 + 1)
    assert pending_outputs(state) == (Placed(1), Reserve("SKU-2", 1))


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("message", [START, CANCEL, RESERVED_1, AUTHORIZED, Expired(T0 + 30)])
def test_a_seen_message_id_returns_the_same_state_and_pending_outputs(
    status: Status, message: Input
) -> None:
    state = BUILD[status]()
    assert "m-start" in state.seen
    decision = handle(state, "m-start", message, T0 + 10_000, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == pending_outputs(state) == PENDING[status]


@pytest.mark.parametrize(
    ("build", "message_id"),
    [
        (authorizing, "m-r1"),
        (authorizing, "m-r2"),
        (confirmed, "m-auth"),
        (rejected, "m-oos"),
        (cancelled, "m-cancel"),
    ],
)
def test_redelivery_of_each_applied_message_is_idempotent(
    build: Callable[[], SagaState], message_id: str
) -> None:
    state = build()
    assert message_id in state.seen
    # Whatever the payload now says, the id was applied: nothing changes.
    decision = handle(state, message_id, Cancel("again"), T0 + 10_000, TIMEOUT)
    assert decision.state is state
    assert tuple(decision.outputs) == pending_outputs(state)


def test_an_input_that_changed_nothing_is_not_remembered() -> None:
    state = reserving()
    ignored = handle(state, "m-x", Authorized("pay-1"), NOW, TIMEOUT)
    assert ignored.state is state
    assert "m-x" not in state.seen
    # The same id, carrying something that applies, is therefore not treated as a duplicate.
    applied = handle(state, "m-x", Cancel("customer"), NOW, TIMEOUT)
    assert applied.state is not None
    assert applied.state.status is Status.CANCELLED
    assert "m-x" in applied.state.seen


# --- where a message was read: redelivery versus a second copy -----------------------------

CMDS = "orders.commands"
REPLIES = "saga.replies"


def test_positions_are_remembered_per_source_for_applied_inputs_only() -> None:
    state = handle(None, "m-start", Start(ORDER_ID, ORDER), T0, TIMEOUT, Position(CMDS, 41)).state
    assert state is not None
    assert state.positions == {CMDS: 41}
    ignored = handle(state, "m-x", Authorized("pay-1"), NOW, TIMEOUT, Position(REPLIES, 3))
    assert ignored.state is state
    assert state.positions == {CMDS: 41}
    reserved = handle(state, "m-r1", Reserved("SKU-1"), NOW, TIMEOUT, Position(REPLIES, 7)).state
    assert reserved is not None
    assert reserved.positions == {CMDS: 41, REPLIES: 7}
    cancelled = handle(reserved, "m-c", Cancel("customer"), NOW, TIMEOUT, Position(CMDS, 50))
    assert cancelled.state is not None
    assert cancelled.state.positions == {CMDS: 50, REPLIES: 7}
    # Without a position (the default) the positions are kept as they are.
    assert _apply(reserved, "m-r2", Reserved("SKU-2"), NOW).positions == {CMDS: 41, REPLIES: 7}


@pytest.mark.parametrize("offset", [41, 30, 0])
def test_a_redelivery_at_an_offset_already_applied_re_issues_pending_outputs(offset: int) -> None:
    state = handle(None, "m-start", Start(ORDER_ID, ORDER), T0, TIMEOUT, Position(CMDS, 41)).state
    assert state is not None
    again = handle(state, "m-start", Start(ORDER_ID, ORDER), NOW, TIMEOUT, Position(CMDS, offset))
    assert again.state is state
    assert tuple(again.outputs) == pending_outputs(state) == PENDING[Status.RESERVING]


@pytest.mark.parametrize("position", [Position(CMDS, 42), Position(REPLIES, 0)])
def test_a_second_copy_at_a_newer_offset_sends_nothing(position: Position) -> None:
    state = handle(None, "m-start", Start(ORDER_ID, ORDER), T0, TIMEOUT, Position(CMDS, 41)).state
    assert state is not None
    copy = handle(state, "m-start", Start(ORDER_ID, ORDER), NOW, TIMEOUT, position)
    assert copy.state is state
    assert tuple(copy.outputs) == ()


def test_a_second_copy_of_a_cancel_after_confirmation_sends_nothing() -> None:
    state = _apply(confirmed(), "m-cancel", Cancel("customer"), T0 + 5)
    applied = handle(
        confirmed(), "m-cancel", Cancel("customer"), T0 + 5, TIMEOUT, Position(CMDS, 9)
    )
    assert applied.state is not None
    assert applied.state.status is state.status is Status.CANCELLED
    later = handle(
        applied.state, "m-cancel", Cancel("customer"), T0 + 6, TIMEOUT, Position(CMDS, 12)
    )
    assert later.state is applied.state
    assert tuple(later.outputs) == ()
    redelivered = handle(
        applied.state, "m-cancel", Cancel("customer"), T0 + 6, TIMEOUT, Position(CMDS, 9)
    )
    assert tuple(redelivered.outputs) == pending_outputs(applied.state)
    assert Void("order closed") in redelivered.outputs


# --- versions and history --------------------------------------------------------------------


def test_versions_and_history_along_a_whole_life() -> None:
    steps: list[tuple[str, Input, float]] = [
        ("m-start", Start(ORDER_ID, ORDER), T0),
        ("m-r2", Reserved("SKU-2"), T0 + 1),
        ("m-dup", Reserved("SKU-2"), T0 + 1.5),  # changes nothing
        ("m-r1", Reserved("SKU-1"), T0 + 2),
        ("m-auth", Authorized("pay-1"), T0 + 3),
        ("m-auth-2", Authorized("pay-2"), T0 + 3.5),  # changes nothing
        ("m-cancel", Cancel("customer"), T0 + 4),
        ("m-cancel-2", Cancel("customer"), T0 + 5),  # changes nothing
    ]
    state: SagaState | None = None
    versions = []
    for message_id, message, now in steps:
        decision = handle(state, message_id, message, now, TIMEOUT)
        assert decision.state is not None
        state = decision.state
        versions.append(state.version)
    assert state is not None
    assert versions == [1, 2, 2, 3, 4, 4, 5, 5]
    assert state.seen == {"m-start", "m-r2", "m-r1", "m-auth", "m-cancel"}
    assert state.version == len(state.seen)
    assert state.history == (
        Transition(T0, Status.RESERVING, "order placed"),
        Transition(T0 + 2, Status.AUTHORIZING, "stock reserved"),
        Transition(T0 + 3, Status.CONFIRMED, "payment authorized"),
        Transition(T0 + 4, Status.CANCELLED, "customer"),
    )
    assert state.payment_id == "pay-1"
    assert state.outcome_version == 5


def test_handle_never_mutates_the_state_it_was_given() -> None:
    state = reserving()
    snapshot = (state.status, state.awaiting, state.version, state.history, state.seen)
    handle(state, "m-r1", Reserved("SKU-1"), NOW, TIMEOUT)
    handle(state, "m-oos", OutOfStock("SKU-1", 5, 2), NOW, TIMEOUT)
    assert (state.status, state.awaiting, state.version, state.history, state.seen) == snapshot


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (Status.RESERVING, "PENDING"),
        (Status.AUTHORIZING, "PENDING"),
        (Status.CONFIRMED, "CONFIRMED"),
        (Status.REJECTED, "REJECTED"),
        (Status.CANCELLED, "CANCELLED"),
    ],
)
def test_order_status_seen_by_clients(status: Status, shown: str) -> None:
    assert status.order_status == shown

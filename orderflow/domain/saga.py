"""The order saga as a pure state machine: ``handle(state, message, now) -> Decision``.

An order reserves stock for every line, then authorizes its payment, then is confirmed. A line
that cannot be reserved, a declined payment, a cancellation or a missed deadline compensates:
every line is released (releases are idempotent, so lines never reserved are released too)
and a payment that may exist is voided.

The state of one order is one value (one changelog record), and it remembers the ids of the
messages it applied and the offset of the last one per source topic. A message seen again
changes nothing. If it comes at an offset the state has already passed, it is a redelivery
after a crash, which may have lost what the first delivery sent: it re-issues what the current
state still needs (everything downstream is idempotent). If it comes at a newer offset, it was
published twice (the outbox relay is at least once) and the first copy's sends went out before
its offset was committed: nothing is sent again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from orderflow.domain.order_document import OrderStatus
from orderflow.domain.orders import Line, NewOrder


class Status(StrEnum):
    RESERVING = "RESERVING"
    AUTHORIZING = "AUTHORIZING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"

    @property
    def order_status(self) -> OrderStatus:
        """The status clients see: PENDING until the saga reaches an outcome."""
        if self in (Status.RESERVING, Status.AUTHORIZING):
            return OrderStatus.PENDING
        return OrderStatus(self.value)


FINAL = frozenset({Status.REJECTED, Status.CANCELLED})


# Inputs: what happened, in the domain's words (the agent translates wire records into these).


@dataclass(frozen=True, slots=True)
class Start:
    order_id: str
    order: NewOrder


@dataclass(frozen=True, slots=True)
class Cancel:
    reason: str


@dataclass(frozen=True, slots=True)
class Reserved:
    sku: str


@dataclass(frozen=True, slots=True)
class OutOfStock:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True, slots=True)
class Authorized:
    payment_id: str


@dataclass(frozen=True, slots=True)
class Declined:
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentDeferred:
    """The gateway could not take the payment now (it is down, or its breaker is open)."""

    retry_after: float


@dataclass(frozen=True, slots=True)
class Expired:
    deadline: float  # the deadline the timer saw pass; a saga that moved on ignores it


Input = Start | Cancel | Reserved | OutOfStock | Authorized | Declined | PaymentDeferred | Expired


# Outputs: commands to other contexts and events about the order.


@dataclass(frozen=True, slots=True)
class Reserve:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Release:
    sku: str


@dataclass(frozen=True, slots=True)
class Authorize:
    amount: int
    currency: str
    token: str


@dataclass(frozen=True, slots=True)
class Void:
    reason: str


@dataclass(frozen=True, slots=True)
class Placed:
    version: int


@dataclass(frozen=True, slots=True)
class Confirmed:
    payment_id: str
    version: int


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str
    version: int


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str
    version: int


Output = Reserve | Release | Authorize | Void | Placed | Confirmed | Rejected | Cancelled


@dataclass(frozen=True, slots=True)
class Transition:
    at: float
    status: Status
    cause: str


@dataclass(frozen=True, slots=True)
class SagaState:
    order_id: str
    order: NewOrder
    status: Status
    awaiting: frozenset[str]  # skus whose reservation reply has not arrived
    deadline: float | None  # when the current step times out; None once final or confirmed
    version: int  # inputs applied; orders.events carry it so projections stay ordered
    history: tuple[Transition, ...]
    seen: frozenset[str] = frozenset()  # ids of the messages applied
    payment_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    outcome_version: int | None = None  # the version of the Confirmed/Rejected/Cancelled event
    positions: Mapping[str, int] = field(default_factory=dict)  # source -> last offset applied
    payment_attempts: int = 0  # authorizations the gateway could not take (deferred)
    payment_retry_pending: bool = False  # the deadline is when to ask for the payment again
    step_asks: int = 1  # times the current step's commands were sent (a deadline re-sends them)

    @property
    def lines(self) -> tuple[Line, ...]:
        return self.order.lines


@dataclass(frozen=True, slots=True)
class Decision:
    state: SagaState | None
    outputs: Sequence[Output] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message was read: its topic (or any source name) and offset."""

    source: str
    offset: int


def handle(
    state: SagaState | None,
    message_id: str,
    message: Input,
    now: float,
    step_timeout: float,
    position: Position | None = None,
    *,
    max_payment_attempts: int = 30,
    step_attempts: int = 1,
) -> Decision:
    """Apply one message at most once (see the module's docstring for repeats)."""
    if state is not None and message_id in state.seen:
        if position is not None and position.offset > state.positions.get(position.source, -1):
            return Decision(state)  # a second copy of a message already handled
        return Decision(state, pending_outputs(state))
    decision = decide(state, message, now, step_timeout, max_payment_attempts, step_attempts)
    if decision.state is None or decision.state is state:
        return decision  # nothing changed: not worth remembering the id
    changed = decision.state
    positions = changed.positions
    if position is not None:
        positions = {**positions, position.source: position.offset}
    return Decision(
        replace(changed, seen=changed.seen | {message_id}, positions=positions), decision.outputs
    )


def decide(
    state: SagaState | None,
    message: Input,
    now: float,
    step_timeout: float,
    max_payment_attempts: int = 30,
    step_attempts: int = 1,
) -> Decision:
    """The next state and outputs for one new message. Returns ``state`` itself for no change.

    A step whose deadline passes is asked again (its commands re-sent, idempotent where they
    land) until it has been asked ``step_attempts`` times; the deadline after the last ask
    compensates. So a reply held up by a worker's failover is waited for, and the business
    deadline of a step is ``step_attempts * step_timeout``."""
    if state is None:
        if isinstance(message, Start):
            return _start(message, now, step_timeout)
        return Decision(None)  # a reply or a cancel for an order this saga never started

    match message, state.status:
        case Start(), _:
            return Decision(state)  # the order already exists
        case Reserved(sku=sku), Status.RESERVING if sku in state.awaiting:
            return _reserved(state, sku, now, step_timeout)
        case Reserved(sku=sku), status if status in FINAL:
            return Decision(state, (Release(sku),))  # late: give the stock back at once
        case OutOfStock(sku=sku, requested=requested, available=available), Status.RESERVING:
            detail = f"{sku}: requested {requested}, available {available}"
            return _compensate(state, Status.REJECTED, "out_of_stock", detail, now, void=False)
        case Authorized(payment_id=payment_id), Status.AUTHORIZING:
            return _confirm(state, payment_id, now)
        case Authorized(), status if status in FINAL:
            return Decision(state, (Void("order already closed"),))
        case PaymentDeferred(retry_after=retry_after), Status.AUTHORIZING if (
            not state.payment_retry_pending
        ):
            return _defer_payment(state, retry_after, now, max_payment_attempts)
        case Declined(reason=reason), Status.AUTHORIZING:
            return _compensate(state, Status.REJECTED, "payment_declined", reason, now, void=True)
        case Cancel(reason=reason), Status.RESERVING:
            return _compensate(state, Status.CANCELLED, reason, "", now, void=False)
        case Cancel(reason=reason), Status.AUTHORIZING | Status.CONFIRMED:
            return _compensate(state, Status.CANCELLED, reason, "", now, void=True)
        case Expired(deadline=deadline), Status.AUTHORIZING if (
            state.payment_retry_pending and deadline == state.deadline and now >= deadline
        ):
            return _retry_payment(state, now, step_timeout)
        case Expired(deadline=deadline), Status.RESERVING | Status.AUTHORIZING if (
            deadline == state.deadline and now >= deadline and state.step_asks < step_attempts
        ):
            return _ask_again(state, now, step_timeout)
        case Expired(deadline=deadline), Status.RESERVING | Status.AUTHORIZING if (
            deadline == state.deadline and now >= deadline
        ):
            step = "stock reservation" if state.status is Status.RESERVING else "payment"
            waited = step_timeout * state.step_asks
            asked = f" (asked {state.step_asks} times)" if state.step_asks > 1 else ""
            detail = f"no answer to the {step} step within {waited:g}s{asked}"
            void = state.status is Status.AUTHORIZING
            return _compensate(state, Status.REJECTED, "timeout", detail, now, void=void)
    return Decision(state)


def pending_outputs(state: SagaState) -> tuple[Output, ...]:
    """Everything the current state implies downstream; re-sent when a message is redelivered."""
    placed: tuple[Output, ...] = (Placed(version=1),)
    match state.status:
        case Status.RESERVING:
            awaiting = [line for line in state.lines if line.sku in state.awaiting]
            return placed + tuple(Reserve(line.sku, line.quantity) for line in awaiting)
        case Status.AUTHORIZING if state.payment_retry_pending:
            return placed  # the next attempt waits for its deadline
        case Status.AUTHORIZING:
            return (*placed, _authorize(state))
        case Status.CONFIRMED:
            assert state.payment_id is not None
            assert state.outcome_version is not None
            return (*placed, Confirmed(state.payment_id, state.outcome_version))
    assert state.outcome_version is not None
    outcome: Output
    if state.status is Status.CANCELLED:
        outcome = Cancelled(state.reason or "", state.outcome_version)
    else:
        outcome = Rejected(state.reason or "", state.detail or "", state.outcome_version)
    releases = tuple(Release(line.sku) for line in state.lines)
    return (*placed, *releases, Void("order closed"), outcome)


def _start(message: Start, now: float, step_timeout: float) -> Decision:
    order = message.order
    state = SagaState(
        order_id=message.order_id,
        order=order,
        status=Status.RESERVING,
        awaiting=frozenset(line.sku for line in order.lines),
        deadline=now + step_timeout,
        version=1,
        history=(Transition(now, Status.RESERVING, "order placed"),),
    )
    reserves = tuple(Reserve(line.sku, line.quantity) for line in order.lines)
    return Decision(state, (Placed(version=1), *reserves))


def _ask_again(state: SagaState, now: float, step_timeout: float) -> Decision:
    """The step's deadline passed: send its commands again and wait once more."""
    asking = replace(
        state,
        deadline=now + step_timeout,
        version=state.version + 1,
        step_asks=state.step_asks + 1,
    )
    if state.status is Status.RESERVING:
        awaiting = [line for line in state.lines if line.sku in state.awaiting]
        return Decision(asking, tuple(Reserve(line.sku, line.quantity) for line in awaiting))
    return Decision(asking, (_authorize(asking),))


def _reserved(state: SagaState, sku: str, now: float, step_timeout: float) -> Decision:
    awaiting = state.awaiting - {sku}
    if awaiting:
        return Decision(replace(state, awaiting=awaiting, version=state.version + 1))
    authorizing = replace(
        state,
        status=Status.AUTHORIZING,
        awaiting=awaiting,
        deadline=now + step_timeout,
        version=state.version + 1,
        step_asks=1,
        history=(*state.history, Transition(now, Status.AUTHORIZING, "stock reserved")),
    )
    return Decision(authorizing, (_authorize(authorizing),))


def _defer_payment(state: SagaState, retry_after: float, now: float, max_attempts: int) -> Decision:
    attempts = state.payment_attempts + 1
    if attempts >= max_attempts:
        detail = f"the payment gateway could not take the payment in {attempts} attempts"
        return _compensate(state, Status.REJECTED, "payment_unavailable", detail, now, void=True)
    waiting = replace(
        state,
        payment_attempts=attempts,
        payment_retry_pending=True,
        deadline=now + retry_after,
        version=state.version + 1,
    )
    return Decision(waiting)


def _retry_payment(state: SagaState, now: float, step_timeout: float) -> Decision:
    asking = replace(
        state,
        payment_retry_pending=False,
        deadline=now + step_timeout,
        version=state.version + 1,
        step_asks=1,
    )
    return Decision(asking, (_authorize(asking),))


def _authorize(state: SagaState) -> Authorize:
    return Authorize(state.order.total, state.order.currency, state.order.payment_token)


def _confirm(state: SagaState, payment_id: str, now: float) -> Decision:
    version = state.version + 1
    confirmed = replace(
        state,
        status=Status.CONFIRMED,
        deadline=None,
        version=version,
        payment_id=payment_id,
        outcome_version=version,
        history=(*state.history, Transition(now, Status.CONFIRMED, "payment authorized")),
    )
    return Decision(confirmed, (Confirmed(payment_id, version),))


def _compensate(
    state: SagaState, status: Status, reason: str, detail: str, now: float, *, void: bool
) -> Decision:
    version = state.version + 1
    closed = replace(
        state,
        status=status,
        deadline=None,
        version=version,
        reason=reason,
        detail=detail or None,
        outcome_version=version,
        payment_retry_pending=False,
        history=(
            *state.history,
            Transition(now, status, f"{reason}: {detail}" if detail else reason),
        ),
    )
    outputs: list[Output] = [Release(line.sku) for line in state.lines]
    if void:
        outputs.append(Void(reason))
    if status is Status.CANCELLED:
        outputs.append(Cancelled(reason, version))
    else:
        outputs.append(Rejected(reason, detail, version))
    return Decision(closed, tuple(outputs))

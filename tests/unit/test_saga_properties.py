"""The pure saga inside a model of the whole system, driven through arbitrary interleavings.

The model keeps what the real agents keep: per sku a stock level and the reservations (written
with orderflow.domain.inventory, reservation first, level second), per order the saga state and
the payments table, and the read model built from orders.events. Every topic is a log per key
(a sku or an order), consumed in offset order as Kafka keeps a partition's order; the saga reads
two of them (orders.commands and saga.replies) in any interleaving. Rules deliver, crash after a
state write (losing some sends), restart consumers from older offsets (redeliveries at the same
offsets), publish a command twice (the outbox relay is at least once: same id, newer offset),
let time pass, fire deadlines, cancel, adjust stock and answer payments, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orderflow import schemas
from orderflow.agents.read_models import project_order
from orderflow.domain import inventory
from orderflow.domain.inventory import (
    AdjustmentRefused,
    Outcome,
    Reservation,
    ReservationStatus,
    StockLevel,
)
from orderflow.domain.orders import Line, NewOrder
from orderflow.domain.saga import (
    Authorize,
    Authorized,
    Cancel,
    Cancelled,
    Confirmed,
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
    Void,
    handle,
)

SKUS = ("A", "B", "C")
ORDER_IDS = ("o1", "o2", "o3")
COMMANDS = "orders.commands"
REPLIES = "saga.replies"
PARTITIONS = tuple((order_id, source) for order_id in ORDER_IDS for source in (COMMANDS, REPLIES))
STEP_TIMEOUT = 10.0
OPEN = (Status.RESERVING, Status.AUTHORIZING)
ENDED = (Status.CONFIRMED, Status.REJECTED, Status.CANCELLED)
ALLOWED = {
    Status.RESERVING: {Status.RESERVING, Status.AUTHORIZING, Status.REJECTED, Status.CANCELLED},
    Status.AUTHORIZING: {Status.CONFIRMED, Status.REJECTED, Status.CANCELLED},
    Status.CONFIRMED: {Status.CANCELLED},
    Status.REJECTED: set(),
    Status.CANCELLED: set(),
}

lines_strategy = st.dictionaries(
    st.sampled_from(SKUS), st.integers(1, 4), min_size=1, max_size=3
).map(lambda quantities: tuple(Line(sku, q, 100) for sku, q in sorted(quantities.items())))


@dataclass(frozen=True)
class Message:
    message_id: str
    order_id: str
    input: Input


@dataclass(frozen=True)
class StockCommand:
    kind: str  # reserve, release, adjust
    order_id: str
    amount: int  # the quantity to reserve or the delta to adjust


class OrderSystem(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.ids = 0
        # inventory
        self.levels: dict[str, StockLevel] = {}
        self.reservations: dict[tuple[str, str], Reservation] = {}
        self.adjusted: dict[str, int] = {}
        self.stock_log: dict[str, list[StockCommand]] = {}
        self.stock_pos: dict[str, int] = {}
        self.crashed_at: dict[str, int | None] = {}
        # payments
        self.payments: dict[str, dict[str, Any]] = {}
        self.pay_log: dict[str, list[str]] = {o: [] for o in ORDER_IDS}
        self.pay_pos: dict[str, int] = dict.fromkeys(ORDER_IDS, 0)
        self.voids: dict[str, int] = dict.fromkeys(ORDER_IDS, 0)
        self.approve: dict[str, bool] = {}
        # the saga and its read model
        self.orders: dict[str, NewOrder] = {}
        self.sagas: dict[str, SagaState] = {}
        self.inbox: dict[tuple[str, str], list[Message]] = {p: [] for p in PARTITIONS}
        self.inbox_pos: dict[tuple[str, str], int] = dict.fromkeys(PARTITIONS, 0)
        self.views: dict[str, dict[str, Any]] = {}

    # --- set-up ------------------------------------------------------------------------------

    @initialize(
        stock=st.tuples(*(st.integers(0, 10) for _ in SKUS)),
        lines=st.tuples(*(lines_strategy for _ in ORDER_IDS)),
        approve=st.tuples(*(st.booleans() for _ in ORDER_IDS)),
    )
    def set_up(
        self,
        stock: tuple[int, ...],
        lines: tuple[tuple[Line, ...], ...],
        approve: tuple[bool, ...],
    ) -> None:
        self.approve = dict(zip(ORDER_IDS, approve, strict=True))  # what the gateway answers
        for sku, on_hand in zip(SKUS, stock, strict=True):
            self.levels[sku] = StockLevel()
            self.adjusted[sku] = 0
            self.crashed_at[sku] = None
            self.stock_log[sku] = [StockCommand("adjust", "", on_hand)]
            self.stock_pos[sku] = 0
            self._process_stock(sku, crash=False)
        for order_id, order_lines in zip(ORDER_IDS, lines, strict=True):
            order = NewOrder(f"cust-{order_id}", "EUR", order_lines, f"tok-{order_id}")
            self.orders[order_id] = order
            self._send(order_id, Start(order_id, order), COMMANDS)

    # --- helpers -----------------------------------------------------------------------------

    def _send(self, order_id: str, message: Input, source: str = REPLIES) -> None:
        self.ids += 1
        self.inbox[(order_id, source)].append(Message(f"m{self.ids}", order_id, message))

    def _deliver(self, partition: tuple[str, str], *, sent: int | None = None) -> None:
        """The saga agent applies the partition's next message, as agents/saga does.

        With ``sent``, the worker crashes after the state write: only the first ``sent`` outputs
        go out and the offset is not committed, so the message is delivered again.
        """
        offset = self.inbox_pos[partition]
        message = self.inbox[partition][offset]
        state = self.sagas.get(message.order_id)
        position = Position(partition[1], offset)
        decision = handle(
            state, message.message_id, message.input, self.now, STEP_TIMEOUT, position
        )
        if sent is None:
            self.inbox_pos[partition] += 1
        new = decision.state
        if new is None:
            assert state is None
            assert not isinstance(message.input, Start)
            assert not decision.outputs
            return  # a message for an order the saga never started: dropped
        if new is not state:
            if state is None:
                assert new.status is Status.RESERVING
            else:
                assert new.status in ALLOWED[state.status], (state.status, new.status)
                assert new.version == state.version + 1
            self.sagas[message.order_id] = new
        outputs = decision.outputs if sent is None else decision.outputs[:sent]
        for output in outputs:
            self._emit(message.order_id, new, output)

    def _emit(self, order_id: str, state: SagaState, output: Output) -> None:
        order = self.orders[order_id]
        match output:
            case Reserve(sku=sku, quantity=quantity):
                assert Line(sku, quantity, 100) in order.lines
                self.stock_log[sku].append(StockCommand("reserve", order_id, quantity))
            case Release(sku=sku):
                assert sku in {line.sku for line in order.lines}
                self.stock_log[sku].append(StockCommand("release", order_id, 0))
            case Authorize(amount=amount, currency=currency, token=token):
                assert (amount, currency, token) == (order.total, "EUR", f"tok-{order_id}")
                self.pay_log[order_id].append("authorize")
            case Void():
                self.voids[order_id] += 1
                self.pay_log[order_id].append("void")
            case Placed() | Confirmed() | Rejected() | Cancelled():
                self._project(order_id, output)

    def _project(self, order_id: str, output: Output) -> None:
        order = self.orders[order_id]
        common: dict[str, Any] = {
            **schemas.envelope(order_id),
            "order_id": order_id,
            "customer_id": order.customer_id,
        }
        event: schemas.Message
        match output:
            case Placed(version=version):
                lines = [
                    schemas.OrderLine(sku=li.sku, quantity=li.quantity, unit_price=li.unit_price)
                    for li in order.lines
                ]
                event = schemas.OrderPlaced(
                    **common, currency="EUR", lines=lines, total=order.total, version=version
                )
            case Confirmed(payment_id=payment_id, version=version):
                event = schemas.OrderConfirmed(**common, payment_id=payment_id, version=version)
            case Rejected(reason=reason, detail=detail, version=version):
                event = schemas.OrderRejected(
                    **common, reason=reason, detail=detail, version=version
                )
            case Cancelled(reason=reason, version=version):
                event = schemas.OrderCancelled(**common, reason=reason, version=version)
            case _:
                raise AssertionError(output)
        updated = project_order(self.views.get(order_id), event)
        if updated is not None:
            self.views[order_id] = updated

    def _process_stock(self, sku: str, *, crash: bool) -> None:
        """The inventory agent applies the next command of the sku's log (see agents/inventory)."""
        offset = self.stock_pos[sku]
        command = self.stock_log[sku][offset]
        level = self.levels[sku]
        key = (sku, command.order_id)
        existing = self.reservations.get(key)
        outcome: Outcome
        match command.kind:
            case "adjust":
                try:
                    outcome = inventory.adjust(level, command.amount, offset)
                except AdjustmentRefused:
                    assert level.on_hand + command.amount < 0
                    if not crash:
                        self.stock_pos[sku] += 1
                    return
            case "reserve":
                outcome = inventory.reserve(level, existing, command.amount, offset)
            case _:
                outcome = inventory.release(level, existing, offset)
        if outcome.reservation is not None:
            self.reservations[key] = outcome.reservation  # the first write
        if crash:  # the level write and the reply are lost; the command comes again
            if outcome.reservation is not None:
                self.crashed_at[sku] = offset
            return
        self.levels[sku] = outcome.level
        if self.crashed_at[sku] == offset:
            self.crashed_at[sku] = None
        if command.kind == "adjust" and outcome.changed:
            self.adjusted[sku] += command.amount
        self.stock_pos[sku] += 1
        if command.kind == "reserve":
            held = outcome.reservation or existing
            assert held is not None
            if held.status is ReservationStatus.RESERVED:
                self._send(command.order_id, Reserved(sku))
            elif held.status is ReservationStatus.REJECTED:
                available = outcome.level.available
                self._send(command.order_id, OutOfStock(sku, command.amount, available))

    def _process_payment(self, order_id: str, *, approve: bool) -> None:
        """The payments agent applies the next command of the order's log (see agents/payments)."""
        command = self.pay_log[order_id][self.pay_pos[order_id]]
        self.pay_pos[order_id] += 1
        record = self.payments.get(order_id)
        if command == "authorize":
            if record is None:
                if approve:
                    record = {"status": "authorized", "payment_id": f"pay-{order_id}"}
                else:
                    record = {"status": "declined", "reason": "card_declined"}
                self.payments[order_id] = record
            elif record["status"] == "voided":
                record = {**record, "reason": "voided"}
            if record["status"] == "authorized":
                self._send(order_id, Authorized(record["payment_id"]))
            else:
                self._send(order_id, Declined(record["reason"]))
        elif record is None:
            self.payments[order_id] = {"status": "voided", "reason": "void"}
        elif record["status"] == "authorized":
            self.payments[order_id] = {**record, "status": "voided"}

    def _inbox_pending(self) -> list[tuple[str, str]]:
        return [p for p in PARTITIONS if self.inbox_pos[p] < len(self.inbox[p])]

    def _stock_pending(self) -> list[str]:
        return [sku for sku in SKUS if self.stock_pos[sku] < len(self.stock_log[sku])]

    def _pay_pending(self) -> list[str]:
        return [o for o in ORDER_IDS if self.pay_pos[o] < len(self.pay_log[o])]

    def _open(self) -> list[str]:
        return [o for o, s in self.sagas.items() if s.status in OPEN]

    # --- rules -------------------------------------------------------------------------------

    @precondition(lambda self: self._inbox_pending())
    @rule(pick=st.integers(0, 10))
    def deliver(self, pick: int) -> None:
        pending = self._inbox_pending()
        self._deliver(pending[pick % len(pending)])

    @precondition(lambda self: self._inbox_pending())
    @rule(pick=st.integers(0, 10), sent=st.integers(0, 4))
    def deliver_and_crash_after_the_state_write(self, pick: int, sent: int) -> None:
        pending = self._inbox_pending()
        self._deliver(pending[pick % len(pending)], sent=sent)

    @rule(partition=st.sampled_from(PARTITIONS), back=st.integers(1, 4))
    def saga_restarts_from_an_older_offset(self, partition: tuple[str, str], back: int) -> None:
        self.inbox_pos[partition] = max(0, self.inbox_pos[partition] - back)

    @rule(order_id=st.sampled_from(ORDER_IDS), pick=st.integers(0, 10))
    def relay_publishes_a_command_twice(self, order_id: str, pick: int) -> None:
        log = self.inbox[(order_id, COMMANDS)]
        log.append(log[pick % len(log)])  # the same message (same id) at a newer offset

    @precondition(lambda self: self._stock_pending())
    @rule(pick=st.integers(0, 10), crash=st.booleans())
    def inventory_applies_a_command(self, pick: int, crash: bool) -> None:
        pending = self._stock_pending()
        self._process_stock(pending[pick % len(pending)], crash=crash)

    @rule(sku=st.sampled_from(SKUS), back=st.integers(1, 4))
    def inventory_restarts_from_an_older_offset(self, sku: str, back: int) -> None:
        self.stock_pos[sku] = max(0, self.stock_pos[sku] - back)

    @rule(sku=st.sampled_from(SKUS), delta=st.integers(-3, 4))
    def adjust_stock(self, sku: str, delta: int) -> None:
        self.stock_log[sku].append(StockCommand("adjust", "", delta))

    @precondition(lambda self: self._pay_pending())
    @rule(pick=st.integers(0, 10), approve=st.booleans())
    def payments_apply_a_command(self, pick: int, approve: bool) -> None:
        pending = self._pay_pending()
        self._process_payment(pending[pick % len(pending)], approve=approve)

    @rule(order_id=st.sampled_from(ORDER_IDS), back=st.integers(1, 3))
    def payments_restart_from_an_older_offset(self, order_id: str, back: int) -> None:
        self.pay_pos[order_id] = max(0, self.pay_pos[order_id] - back)

    @rule(dt=st.sampled_from([0.5, 4.0, 9.0, 15.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: self._open())
    @rule(pick=st.integers(0, 10))
    def timer_fires(self, pick: int) -> None:
        order_id = self._open()[pick % len(self._open())]
        deadline = self.sagas[order_id].deadline
        assert deadline is not None
        self.now = max(self.now, deadline)
        self._send(order_id, Expired(deadline))

    @precondition(lambda self: self._open())
    @rule(pick=st.integers(0, 10), shift=st.sampled_from([-20.0, -0.5, 0.5, 20.0]))
    def a_stale_deadline_expires(self, pick: int, shift: float) -> None:
        order_id = self._open()[pick % len(self._open())]
        deadline = self.sagas[order_id].deadline
        assert deadline is not None
        self._send(order_id, Expired(deadline + shift))

    @rule(order_id=st.sampled_from(ORDER_IDS))
    def customer_cancels(self, order_id: str) -> None:
        self._send(order_id, Cancel("customer"), COMMANDS)

    @rule()
    def settle(self) -> None:
        """Deliver everything and apply every command; fire the deadlines left; then check."""
        self._drain()
        # Every reply has arrived: no saga may still wait for one (nothing is lost for good).
        assert self._open() == []
        for order_id in ORDER_IDS:
            if order_id in self.sagas and self.sagas[order_id].status in OPEN:
                self.timer_fires(ORDER_IDS.index(order_id))
        self._drain()
        self._check_settled()

    def _drain(self) -> None:
        for _ in range(10_000):
            if inbox := self._inbox_pending():
                self._deliver(inbox[0])
            elif stock := self._stock_pending():
                self._process_stock(stock[0], crash=False)
            elif pay := self._pay_pending():
                self._process_payment(pay[0], approve=self.approve[pay[0]])
            else:
                return
        raise AssertionError("the system did not settle")

    def teardown(self) -> None:
        if self.orders:
            self.settle()

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def stock_changes_only_by_adjustments(self) -> None:
        for sku, level in self.levels.items():
            assert level.on_hand + level.reserved == self.adjusted[sku]
            assert level.on_hand >= 0
            assert level.reserved >= 0

    @invariant()
    def reserved_is_the_sum_of_the_held_reservations(self) -> None:
        for sku, level in self.levels.items():
            if self.crashed_at[sku] is not None:
                continue  # between the two writes: the redelivery brings the level up to date
            held = sum(
                r.quantity
                for (s, _), r in self.reservations.items()
                if s == sku and r.status is ReservationStatus.RESERVED
            )
            assert level.reserved == held

    @invariant()
    def sagas_are_consistent(self) -> None:
        for order_id, state in self.sagas.items():
            assert state.version == len(state.seen)
            for source, offset in state.positions.items():
                # the offset of the last message applied from each topic
                applied = self.inbox[(order_id, source)][offset]
                assert applied.message_id in state.seen
            assert state.history[-1].status is state.status
            assert [t.at for t in state.history] == sorted(t.at for t in state.history)
            assert (state.deadline is None) == (state.status not in OPEN)
            assert (state.outcome_version is None) == (state.status in OPEN)
            if state.status in (Status.AUTHORIZING, Status.CONFIRMED):
                # every line was reserved; nothing releases them before the saga closes
                for line in state.lines:
                    held = self.reservations[(line.sku, order_id)]
                    assert held.status is ReservationStatus.RESERVED
                    assert held.quantity == line.quantity

    def _check_settled(self) -> None:
        assert not self._inbox_pending()
        assert set(self.sagas) == set(ORDER_IDS)
        assert all(sku is None for sku in self.crashed_at.values())
        self.reserved_is_the_sum_of_the_held_reservations()
        for order_id, state in self.sagas.items():
            assert state.status in ENDED
            held = {
                sku: r.quantity
                for (sku, o), r in self.reservations.items()
                if o == order_id and r.status is ReservationStatus.RESERVED
            }
            payment = self.payments.get(order_id)
            if state.status is Status.CONFIRMED:
                assert held == {line.sku: line.quantity for line in state.lines}
                assert self.voids[order_id] == 0
                assert payment == {"status": "authorized", "payment_id": state.payment_id}
            else:
                assert held == {}
                assert payment is None or payment["status"] != "authorized"
            view = self.views[order_id]
            assert view["status"] == state.status.order_status
            assert view["version"] == state.outcome_version
            assert view["reason"] == state.reason


TestOrderSystem = OrderSystem.TestCase
TestOrderSystem.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

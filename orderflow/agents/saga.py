"""The order saga: read the order's state, let the domain decide, write the state, send.

Wire records are translated to the domain's inputs here, and the domain's outputs to records;
everything else is orderflow.domain.saga.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.agents.deadlines import DeadlineTimer
from orderflow.domain import saga
from orderflow.domain.orders import Line, NewOrder
from orderflow.observability import metrics
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError
from orderflow.settings import Settings
from orderflow.tables.typed import TypedTable
from orderflow.topics import Bus, publish

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def to_input(message: schemas.Message) -> saga.Input | None:
    match message:
        case schemas.PlaceOrder():
            lines = tuple(Line(li.sku, li.quantity, li.unit_price) for li in message.lines)
            order = NewOrder(message.customer_id, message.currency, lines, message.payment_token)
            return saga.Start(message.order_id, order)
        case schemas.CancelOrder():
            return saga.Cancel(message.reason)
        case schemas.StockReserved():
            return saga.Reserved(message.sku)
        case schemas.StockRejected():
            return saga.OutOfStock(message.sku, message.requested, message.available)
        case schemas.PaymentAuthorized():
            return saga.Authorized(message.payment_id)
        case schemas.PaymentDeclined():
            return saga.Declined(message.reason)
        case schemas.PaymentUnavailable():
            return saga.PaymentDeferred(message.retry_after)
        case schemas.DeadlineExpired():
            return saga.Expired(message.deadline)
    return None


def _identity(output: saga.Output, state: saga.SagaState) -> str:
    """What makes an output itself: equal for every copy of it, different from any other."""
    match output:
        case saga.Reserve(sku=sku):
            return f"reserve/{sku}"
        case saga.Release(sku=sku):
            return f"release/{sku}"
        case saga.Authorize():
            return f"authorize/{state.payment_attempts}"
        case saga.Void():
            return "void"
        case saga.Placed():
            return "placed"
        case (
            saga.Confirmed(version=version)
            | saga.Rejected(version=version)
            | saga.Cancelled(version=version)
        ):
            return f"{type(output).__name__.lower()}/{version}"
    raise AssertionError(output)


class OrderSaga:
    """The saga's handler: reads the order's state, lets the domain decide, writes the state
    (and the deadline index), sends what the domain decided."""

    def __init__(
        self,
        sagas: TypedTable[saga.SagaState],
        open_sagas: TypedTable[float],
        bus: Bus,
        settings: Settings,
        on_deadline: Callable[[str, float], None] = lambda order_id, deadline: None,
        on_close: Callable[[str], None] = lambda order_id: None,
    ) -> None:
        self.sagas = sagas
        self.open_sagas = open_sagas
        self.bus = bus
        self.settings = settings
        # The deadline timer's watch (orderflow.agents.deadlines).
        self.on_deadline = on_deadline
        self.on_close = on_close

    async def __call__(self, message: schemas.Message, event: EventT[Any]) -> None:
        await self.apply(message, saga.Position(event.message.topic, event.message.offset))

    async def send(
        self, output: saga.Output, state: saga.SagaState, cause: schemas.Message
    ) -> None:
        """Publish one of the domain's outputs as a record, caused by ``cause``."""
        order_id = state.order_id
        envelope = schemas.caused_by(cause, schemas.output_id(order_id, _identity(output, state)))
        customer_id = state.order.customer_id
        match output:
            case saga.Reserve(sku=sku, quantity=quantity):
                record: schemas.Message = schemas.ReserveStock(
                    **envelope, order_id=order_id, sku=sku, quantity=quantity
                )
                await publish(self.bus.inventory_commands, sku, record)
                return
            case saga.Release(sku=sku):
                record = schemas.ReleaseStock(**envelope, order_id=order_id, sku=sku)
                await publish(self.bus.inventory_commands, sku, record)
                return
            case saga.Authorize(amount=amount, currency=currency, token=token):
                record = schemas.AuthorizePayment(
                    **envelope, order_id=order_id, amount=amount, currency=currency, token=token
                )
                await publish(self.bus.payments_commands, order_id, record)
                return
            case saga.Void(reason=reason):
                record = schemas.VoidPayment(**envelope, order_id=order_id, reason=reason)
                await publish(self.bus.payments_commands, order_id, record)
                return
            case saga.Placed(version=version):
                order = state.order
                record = schemas.OrderPlaced(
                    **envelope,
                    order_id=order_id,
                    customer_id=customer_id,
                    currency=order.currency,
                    lines=[
                        schemas.OrderLine(
                            sku=li.sku, quantity=li.quantity, unit_price=li.unit_price
                        )
                        for li in order.lines
                    ],
                    total=order.total,
                    version=version,
                    placed_at=_iso(state.history[0].at),
                )
            case saga.Confirmed(payment_id=payment_id, version=version):
                record = schemas.OrderConfirmed(
                    **envelope,
                    order_id=order_id,
                    customer_id=customer_id,
                    payment_id=payment_id,
                    version=version,
                )
            case saga.Rejected(reason=reason, detail=detail, version=version):
                record = schemas.OrderRejected(
                    **envelope,
                    order_id=order_id,
                    customer_id=customer_id,
                    reason=reason,
                    detail=detail,
                    version=version,
                )
            case saga.Cancelled(reason=reason, version=version):
                record = schemas.OrderCancelled(
                    **envelope,
                    order_id=order_id,
                    customer_id=customer_id,
                    reason=reason,
                    version=version,
                )
        await publish(self.bus.orders_events, order_id, record)

    async def apply(self, message: schemas.Message, position: saga.Position | None = None) -> None:
        """Process one message of orders.commands or saga.replies, read at ``position``."""
        step = to_input(message)
        if step is None:
            raise SchemaError(f"{type(message).__name__} is not a message of the order saga")
        order_id: str = message.order_id
        state = self.sagas.get(order_id)
        decision = saga.handle(
            state,
            message.event_id,
            step,
            time.time(),
            self.settings.saga_step_timeout,
            position,
            max_payment_attempts=self.settings.payment_max_attempts,
            step_attempts=self.settings.saga_step_attempts,
        )
        new_state = decision.state
        if new_state is None:
            log.info("saga: %s for unknown order %s ignored", type(message).__name__, order_id)
            return
        if new_state is not state:
            self.sagas[order_id] = new_state
            _observe(new_state, decision.outputs)
        # On redelivery (same state) the index is checked too: a crash may have lost its write.
        if new_state is state or state is None or state.deadline != new_state.deadline:
            self._index_deadline(order_id, new_state.deadline)
        for output in decision.outputs:
            await self.send(output, new_state, message)

    def _index_deadline(self, order_id: str, deadline: float | None) -> None:
        """Keep saga_deadlines holding exactly the open sagas (a key written when a saga opens,
        deleted when it closes), and tell the timer the saga's deadline."""
        if deadline is None:
            if order_id in self.open_sagas:
                del self.open_sagas[order_id]
            self.on_close(order_id)
            return
        if order_id not in self.open_sagas:
            self.open_sagas[order_id] = deadline
        self.on_deadline(order_id, deadline)


def _observe(state: saga.SagaState, outputs: Sequence[saga.Output]) -> None:
    """Business metrics, counted once per transition (never for re-sent copies)."""
    for output in outputs:
        match output:
            case saga.Placed():
                metrics.ORDERS_PLACED.inc()
                metrics.ORDER_VALUE.labels(state.order.currency).observe(state.order.total)
            case saga.Confirmed():
                metrics.ORDERS_CONFIRMED.inc()
            case saga.Rejected(reason=reason):
                metrics.ORDERS_REJECTED.labels(reason).inc()
            case saga.Cancelled():
                metrics.ORDERS_CANCELLED.inc()
            case _:
                continue
        if not isinstance(output, saga.Placed):
            elapsed = state.history[-1].at - state.history[0].at
            metrics.SAGA_DURATION.labels(state.status.value.lower()).observe(elapsed)


def register(app: OrderflowApp) -> None:
    sagas, open_sagas = app.data.sagas, app.data.saga_deadlines

    def current_deadline(order_id: str) -> float | None:
        state = sagas.get(order_id)
        return None if state is None else state.deadline

    timer = DeadlineTimer(
        open_sagas,
        current_deadline,
        app.bus,
        resend_after=app.settings.saga_step_timeout,
        generation=lambda: app.consumer_generation_id,
        settled=lambda: not (app.rebalancing or app.in_recovery),
    )
    handler = OrderSaga(sagas, open_sagas, app.bus, app.settings, timer.track, timer.forget)

    @app.agent(app.bus.saga_inbox, name=f"{__name__}.order_saga")
    async def order_saga(stream: StreamT[bytes]) -> None:
        await process(app, stream, handler, "saga")

    app.timer(interval=1.0, name=f"{__name__}.expire_late_sagas")(timer.tick)

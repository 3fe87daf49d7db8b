"""The inventory: reserve and release stock per order line, adjust it by hand.

Commands arrive on inventory.commands keyed by sku, so every command for one sku is applied in
order by one worker. Replies go to the saga (saga.replies, keyed by order id); level changes go
to inventory.events. The rules, and how a redelivered command stays harmless, are in
orderflow.domain.inventory.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from orderflow import schemas
from orderflow.domain import inventory
from orderflow.domain.inventory import Outcome, Reservation, ReservationStatus, StockLevel
from orderflow.observability import metrics
from orderflow.resilience.handling import process
from orderflow.schemas.codec import SchemaError
from orderflow.tables import Tables, reservation_key
from orderflow.topics import Bus, publish

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)


class StockKeeper:
    """The inventory's handler: applies a command to the sku's records in the inventory
    table, replies to the saga, publishes the level."""

    def __init__(self, tables: Tables, bus: Bus) -> None:
        self.tables = tables
        self.bus = bus

    async def __call__(self, command: schemas.Message, event: EventT[Any]) -> None:
        await self.apply(command, event.message.offset)

    def _write(self, sku: str, order_id: str | None, outcome: Outcome) -> None:
        # The reservation first, the level second, into one table: its changelog keeps them in
        # that order (see orderflow.domain.inventory).
        if outcome.reservation is not None and order_id is not None:
            self.tables.inventory[reservation_key(sku, order_id)] = outcome.reservation
        self.tables.inventory[sku] = outcome.level

    def _level(self, sku: str) -> StockLevel:
        return self.tables.stock_level(sku) or StockLevel()

    async def _publish_level(self, sku: str, level: StockLevel, cause: schemas.Message) -> None:
        changed = schemas.StockLevelChanged(
            **schemas.envelope(sku, cause.event_id),
            sku=sku,
            on_hand=level.on_hand,
            reserved=level.reserved,
            version=level.offset,
        )
        await publish(self.bus.inventory_events, sku, changed)

    async def _reply(
        self, command: schemas.ReserveStock, held: Reservation, level: StockLevel
    ) -> None:
        reply: schemas.Message
        envelope = schemas.caused_by(command)
        if held.status is ReservationStatus.RESERVED:
            reply = schemas.StockReserved(
                **envelope, order_id=command.order_id, sku=command.sku, quantity=held.quantity
            )
        elif held.status is ReservationStatus.REJECTED:
            reply = schemas.StockRejected(
                **envelope,
                order_id=command.order_id,
                sku=command.sku,
                requested=command.quantity,
                available=level.available,
            )
        else:
            return  # released before it was reserved: the order is closed, nobody waits
        await publish(self.bus.saga_replies, command.order_id, reply)

    async def apply(self, command: schemas.Message, offset: int) -> None:
        match command:
            case schemas.ReserveStock(sku=sku, order_id=order_id, quantity=quantity):
                existing = self.tables.reservation(sku, order_id)
                outcome = inventory.reserve(self._level(sku), existing, quantity, offset)
                self._write(sku, order_id, outcome)
                held = outcome.reservation or existing
                if held is None:
                    raise inventory.InconsistentStock(
                        f"{sku} is at offset {outcome.level.offset} >= {offset} "
                        f"but holds no reservation for order {order_id}"
                    )
                await self._reply(command, held, outcome.level)
            case schemas.ReleaseStock(sku=sku, order_id=order_id):
                existing = self.tables.reservation(sku, order_id)
                outcome = inventory.release(self._level(sku), existing, offset)
                self._write(sku, order_id, outcome)
            case schemas.AdjustStock(sku=sku, delta=delta):
                try:
                    outcome = inventory.adjust(self._level(sku), delta, offset, command.event_id)
                except inventory.AdjustmentRefused as refused:
                    log.warning("inventory: adjustment of %s refused: %s", sku, refused)
                    return
                self._write(sku, None, outcome)
            case _:
                raise SchemaError(f"{type(command).__name__} is not an inventory command")
        _observe(outcome, offset)
        if outcome.changed:
            metrics.STOCK_GAUGES.set(sku, outcome.level.on_hand)
            await self._publish_level(sku, outcome.level, command)


def _observe(outcome: Outcome, offset: int) -> None:
    held = outcome.reservation
    if held is None or held.offset != offset:
        return  # nothing decided by this command
    match held.status:
        case ReservationStatus.RESERVED:
            metrics.RESERVATIONS.labels("reserved").inc()
        case ReservationStatus.REJECTED:
            metrics.RESERVATIONS.labels("rejected").inc()
        case ReservationStatus.RELEASED if held.quantity:
            metrics.RELEASES.inc()


def register(app: OrderflowApp) -> None:
    keeper = StockKeeper(app.data, app.bus)

    @app.agent(app.bus.inventory_commands, name=f"{__name__}.stock_keeper")
    async def stock_keeper(stream: StreamT[bytes]) -> None:
        await process(app, stream, keeper, "inventory")

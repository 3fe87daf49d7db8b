"""Stock rules: reserve per order line, release idempotently, adjust by hand.

Per sku there is one ``StockLevel`` and, per (sku, order), one ``Reservation``: two records of
one table, written reservation first. Both carry the offset of the command that last changed
them, which makes a redelivered command safe.

What a crash leaves: the table's changelog receives a command's records on one partition, in
the order they were written, and Kafka keeps a partition's records in order; so what survives
is a prefix of the writes: the reservation without the level, never the level without the
reservation. Commands before the committed offset are complete (Faust flushes the producer
before it commits); the ones after it are delivered again, in order:

- ``level.offset >= offset``: the command was applied completely; only its reply is re-sent.
- ``reservation.offset == offset`` but the level is older: the crash fell between the two
  writes; the reservation's transition is known and only the level is brought up to date.
- otherwise the command is new and is decided afresh. A second, different command for the same
  reservation (a re-sent ReserveStock) finds the reservation and changes nothing.

Invariant: for every sku, ``on_hand + reserved`` changes only by adjustments, and ``reserved``
is the sum of the quantities of its reservations in state RESERVED.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"  # there was not enough stock; nothing is held
    RELEASED = "RELEASED"  # was reserved (or never was), and holds nothing now


@dataclass(frozen=True, slots=True)
class StockLevel:
    on_hand: int = 0
    reserved: int = 0
    offset: int = -1  # the offset of the last inventory command applied to this sku
    # Event ids of the latest adjustments: a replayed adjustment (from a dead-letter topic,
    # at a new offset) is recognised and not applied twice.
    recent_adjustments: tuple[str, ...] = ()

    @property
    def available(self) -> int:
        return self.on_hand


@dataclass(frozen=True, slots=True)
class Reservation:
    quantity: int
    status: ReservationStatus
    offset: int  # the offset of the command that made this transition


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying one command gives: the records to write (in this order) and the reply."""

    reservation: Reservation | None  # written first, when not None
    level: StockLevel  # written second
    changed: bool  # whether the level's quantities changed (worth an inventory event)


def reserve(
    level: StockLevel, reservation: Reservation | None, quantity: int, offset: int
) -> Outcome:
    if offset <= level.offset:
        return Outcome(None, level, changed=False)  # applied before the crash; reply again
    if reservation is not None and reservation.offset == offset:
        return _catch_up(level, reservation, offset)
    if reservation is not None:
        return Outcome(None, replace(level, offset=offset), changed=False)  # a repeated command
    if quantity <= level.on_hand:
        held = Reservation(quantity, ReservationStatus.RESERVED, offset)
        return _catch_up(level, held, offset)
    return Outcome(
        Reservation(quantity, ReservationStatus.REJECTED, offset),
        replace(level, offset=offset),
        changed=False,
    )


def release(level: StockLevel, reservation: Reservation | None, offset: int) -> Outcome:
    if offset <= level.offset:
        return Outcome(None, level, changed=False)
    if reservation is not None and reservation.offset == offset:
        return _catch_up(level, reservation, offset)
    if reservation is not None and reservation.status is ReservationStatus.RESERVED:
        released = Reservation(reservation.quantity, ReservationStatus.RELEASED, offset)
        return _catch_up(level, released, offset)
    if reservation is None:
        # Released before any reservation: remember it, so a late or re-sent ReserveStock for
        # this order finds it and holds nothing.
        tombstone = Reservation(0, ReservationStatus.RELEASED, offset)
        return Outcome(tombstone, replace(level, offset=offset), changed=False)
    return Outcome(None, replace(level, offset=offset), changed=False)


class InconsistentStock(RuntimeError):
    """The stored records contradict each other: a level applied a command whose reservation
    is missing. The write order rules it out; the command is dead-lettered with this reason."""


class AdjustmentRefused(ValueError):
    """An adjustment would take on-hand stock below zero."""


RECENT_ADJUSTMENTS_KEPT = 64


def adjust(level: StockLevel, delta: int, offset: int, adjustment_id: str | None = None) -> Outcome:
    if offset <= level.offset:
        return Outcome(None, level, changed=False)
    if adjustment_id is not None and adjustment_id in level.recent_adjustments:
        return Outcome(None, replace(level, offset=offset), changed=False)
    if level.on_hand + delta < 0:
        raise AdjustmentRefused(f"on hand is {level.on_hand}; cannot apply {delta}")
    recent = level.recent_adjustments
    if adjustment_id is not None:
        recent = (*recent, adjustment_id)[-RECENT_ADJUSTMENTS_KEPT:]
    adjusted = replace(
        level, on_hand=level.on_hand + delta, offset=offset, recent_adjustments=recent
    )
    return Outcome(None, adjusted, changed=True)


def _catch_up(level: StockLevel, reservation: Reservation, offset: int) -> Outcome:
    """Bring the level up to date with a reservation transition made at ``offset``."""
    quantity = reservation.quantity
    match reservation.status:
        case ReservationStatus.RESERVED:
            level = replace(
                level, on_hand=level.on_hand - quantity, reserved=level.reserved + quantity,
                offset=offset,
            )  # fmt: skip
        case ReservationStatus.RELEASED:
            level = replace(
                level, on_hand=level.on_hand + quantity, reserved=level.reserved - quantity,
                offset=offset,
            )  # fmt: skip
        case ReservationStatus.REJECTED:
            return Outcome(reservation, replace(level, offset=offset), changed=False)
    return Outcome(reservation, level, changed=quantity > 0)

"""Stock rules: reserve, release, adjust, and the offset scheme that survives a crash."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderflow.domain.inventory import (
    AdjustmentRefused,
    Outcome,
    Reservation,
    ReservationStatus,
    StockLevel,
    adjust,
    release,
    reserve,
)

RESERVED = ReservationStatus.RESERVED
REJECTED = ReservationStatus.REJECTED
RELEASED = ReservationStatus.RELEASED

LEVEL = StockLevel(on_hand=10, reserved=4, offset=7)


# --- reserve ---------------------------------------------------------------------------------


def test_reserve_holds_the_quantity() -> None:
    outcome = reserve(LEVEL, None, 3, 8)
    assert outcome == Outcome(
        Reservation(3, RESERVED, 8), StockLevel(on_hand=7, reserved=7, offset=8), changed=True
    )


def test_reserve_everything_on_hand() -> None:
    outcome = reserve(LEVEL, None, 10, 8)
    assert outcome.reservation == Reservation(10, RESERVED, 8)
    assert outcome.level == StockLevel(0, 14, 8)
    assert outcome.level.available == 0


def test_reserve_more_than_available_is_rejected_and_holds_nothing() -> None:
    outcome = reserve(LEVEL, None, 11, 8)
    assert outcome.reservation == Reservation(11, REJECTED, 8)
    assert outcome.level == StockLevel(on_hand=10, reserved=4, offset=8)
    assert outcome.changed is False


def test_reserve_on_an_empty_sku_is_rejected() -> None:
    outcome = reserve(StockLevel(), None, 1, 0)
    assert outcome.reservation == Reservation(1, REJECTED, 0)
    assert (outcome.level.on_hand, outcome.level.reserved, outcome.level.offset) == (0, 0, 0)


def test_available_is_what_is_on_hand() -> None:
    assert StockLevel(on_hand=5, reserved=3).available == 5
    assert StockLevel().offset == -1


def test_a_second_reserve_for_the_same_reservation_changes_nothing() -> None:
    first = reserve(LEVEL, None, 3, 8)
    assert first.reservation is not None
    again = reserve(first.level, first.reservation, 3, 9)
    assert again == Outcome(None, StockLevel(7, 7, 9), changed=False)
    different = reserve(first.level, first.reservation, 5, 9)  # even with another quantity
    assert different == Outcome(None, StockLevel(7, 7, 9), changed=False)


def test_a_second_reserve_after_a_rejection_changes_nothing() -> None:
    rejected = Reservation(20, REJECTED, 5)
    outcome = reserve(LEVEL, rejected, 1, 8)  # would fit now, but the order was answered
    assert outcome == Outcome(None, StockLevel(10, 4, 8), changed=False)


# --- release ---------------------------------------------------------------------------------


def test_release_returns_the_reserved_stock() -> None:
    held = reserve(LEVEL, None, 3, 8)
    assert held.reservation is not None
    outcome = release(held.level, held.reservation, 9)
    assert outcome == Outcome(
        Reservation(3, RELEASED, 9), StockLevel(on_hand=10, reserved=4, offset=9), changed=True
    )


def test_release_twice_returns_the_stock_once() -> None:
    held = reserve(LEVEL, None, 3, 8)
    assert held.reservation is not None
    first = release(held.level, held.reservation, 9)
    assert first.reservation is not None
    second = release(first.level, first.reservation, 10)
    assert second == Outcome(None, StockLevel(10, 4, 10), changed=False)


def test_release_of_a_rejected_reservation_changes_nothing() -> None:
    outcome = release(LEVEL, Reservation(11, REJECTED, 5), 8)
    assert outcome == Outcome(None, StockLevel(10, 4, 8), changed=False)


def test_release_before_reserve_leaves_a_tombstone() -> None:
    outcome = release(LEVEL, None, 8)
    assert outcome == Outcome(Reservation(0, RELEASED, 8), StockLevel(10, 4, 8), changed=False)
    assert outcome.reservation is not None
    late = reserve(outcome.level, outcome.reservation, 3, 9)
    assert late == Outcome(None, StockLevel(10, 4, 9), changed=False)


# --- redelivery ------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [7, 6, 0])
def test_a_command_at_or_before_the_level_offset_changes_nothing(offset: int) -> None:
    held = Reservation(2, RESERVED, 3)
    for outcome in (
        reserve(LEVEL, None, 1, offset),
        reserve(LEVEL, held, 1, offset),
        release(LEVEL, held, offset),
        release(LEVEL, None, offset),
        adjust(LEVEL, 5, offset),
        adjust(LEVEL, -100, offset),  # not even refused: it was applied (or refused) before
    ):
        assert outcome.reservation is None
        assert outcome.level is LEVEL
        assert outcome.changed is False


def test_redelivered_reserve_after_a_complete_apply_changes_nothing() -> None:
    first = reserve(LEVEL, None, 3, 8)
    assert first.reservation is not None
    again = reserve(first.level, first.reservation, 3, 8)
    assert again.reservation is None
    assert again.level == first.level


def test_crash_after_the_reservation_write_catches_the_level_up_once() -> None:
    first = reserve(LEVEL, None, 3, 8)
    written = first.reservation
    assert written is not None
    # The level write was lost: the redelivery sees the new reservation and the old level.
    recovered = reserve(LEVEL, written, 3, 8)
    assert recovered == Outcome(written, StockLevel(7, 7, 8), changed=True)
    assert recovered == first
    # A further redelivery finds both written and changes nothing.
    again = reserve(recovered.level, written, 3, 8)
    assert again == Outcome(None, recovered.level, changed=False)


def test_crash_after_a_release_write_catches_the_level_up_once() -> None:
    held = reserve(LEVEL, None, 3, 8)
    assert held.reservation is not None
    first = release(held.level, held.reservation, 9)
    assert first.reservation is not None
    recovered = release(held.level, first.reservation, 9)
    assert recovered == first
    assert recovered.level == StockLevel(10, 4, 9)
    assert release(recovered.level, first.reservation, 9).level == recovered.level


def test_crash_after_a_rejection_write_only_advances_the_offset() -> None:
    first = reserve(LEVEL, None, 50, 8)
    assert first.reservation == Reservation(50, REJECTED, 8)
    recovered = reserve(LEVEL, first.reservation, 50, 8)
    assert recovered == Outcome(first.reservation, StockLevel(10, 4, 8), changed=False)


def test_crash_after_a_tombstone_write_only_advances_the_offset() -> None:
    first = release(LEVEL, None, 8)
    assert first.reservation is not None
    recovered = release(LEVEL, first.reservation, 8)
    assert recovered.level == StockLevel(10, 4, 8)
    assert recovered.changed is False


# --- adjust ----------------------------------------------------------------------------------


def test_adjust_adds_and_removes_on_hand_stock_only() -> None:
    assert adjust(LEVEL, 5, 8) == Outcome(None, StockLevel(15, 4, 8), changed=True)
    assert adjust(LEVEL, -10, 8) == Outcome(None, StockLevel(0, 4, 8), changed=True)


def test_adjust_below_zero_is_refused() -> None:
    with pytest.raises(AdjustmentRefused, match="on hand is 10; cannot apply -11"):
        adjust(LEVEL, -11, 8)
    assert issubclass(AdjustmentRefused, ValueError)


def test_reserved_stock_cannot_be_adjusted_away() -> None:
    held = reserve(StockLevel(5, 0, 0), None, 5, 1)
    with pytest.raises(AdjustmentRefused):
        adjust(held.level, -1, 2)


# --- random commands with crashes and redeliveries --------------------------------------------

Command = tuple[str, int, int]  # kind, order, quantity or delta

commands = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 3), st.integers(1, 6)),
        st.tuples(st.just("release"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("adjust"), st.just(-1), st.integers(-5, 8)),
    ),
    max_size=30,
)
# After each command: whether the worker commits its offset, whether it is killed, and how many
# of the writes made since the last commit reached the changelog before the kill.
faults = st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 8)), min_size=30)

Key = int | None  # an order's reservation, or None for the level
Write = tuple[Key, StockLevel | Reservation]


@dataclass
class Store:
    """One sku's records as the agent writes them: the level and the reservations, in one
    table whose changelog partition receives every write in order."""

    level: StockLevel = field(default_factory=StockLevel)
    reservations: dict[int, Reservation] = field(default_factory=dict)
    changelog: list[Write] = field(default_factory=list)
    adjusted: int = 0  # the sum of the adjustments applied (kept in the run without crashes)

    def apply(self, offset: int, command: Command) -> None:
        kind, order, amount = command
        existing = self.reservations.get(order)
        before = self.level
        if kind == "adjust":
            try:
                outcome = adjust(self.level, amount, offset)
            except AdjustmentRefused:
                assert self.level.on_hand + amount < 0
                return
        elif kind == "reserve":
            outcome = reserve(self.level, existing, amount, offset)
            assert outcome.reservation is not None or existing is not None  # there is a reply
        else:
            outcome = release(self.level, existing, offset)
        quantities = (outcome.level.on_hand, outcome.level.reserved)
        if kind != "adjust":
            assert outcome.changed == (quantities != (before.on_hand, before.reserved))
        elif outcome.changed:
            self.adjusted += amount
        if outcome.reservation is not None:
            self.reservations[order] = outcome.reservation
            self.changelog.append((order, outcome.reservation))
        self.level = outcome.level
        self.changelog.append((None, outcome.level))

    @classmethod
    def recovered(cls, changelog: list[Write]) -> Store:
        """What a worker rebuilds from the changelog."""
        store = cls(changelog=list(changelog))
        for key, value in changelog:
            if key is None:
                assert isinstance(value, StockLevel)
                store.level = value
            else:
                assert isinstance(value, Reservation)
                store.reservations[key] = value
        return store

    def check(self, adjusted: int) -> None:
        held = sum(
            r.quantity for r in self.reservations.values() if r.status is ReservationStatus.RESERVED
        )
        assert self.level.on_hand + self.level.reserved == adjusted
        assert self.level.reserved == held
        assert self.level.on_hand >= 0
        assert self.level.reserved >= 0


@settings(max_examples=500, deadline=None)
@given(commands=commands, faults=faults)
def test_crashes_and_redeliveries_keep_the_invariant_and_the_result(
    commands: list[Command], faults: list[tuple[bool, bool, int]]
) -> None:
    clean = Store()
    worker = Store()
    committed, durable = 0, 0  # the committed offset; the writes flushed when it was committed
    for offset, command in enumerate(commands):
        clean.apply(offset, command)
        worker.apply(offset, command)
        commit, kill, reached = faults[offset]
        if kill:
            # The changelog keeps every write made before the commit and a prefix of the rest;
            # the next owner rebuilds from it and is delivered every uncommitted command again.
            kept = min(len(worker.changelog), durable + reached)
            worker = Store.recovered(worker.changelog[:kept])
            for replayed in range(committed, offset + 1):
                worker.apply(replayed, commands[replayed])
        elif commit:
            committed, durable = offset + 1, len(worker.changelog)
        clean.check(clean.adjusted)
        worker.check(clean.adjusted)
        assert worker.level == clean.level
        assert worker.reservations == clean.reservations

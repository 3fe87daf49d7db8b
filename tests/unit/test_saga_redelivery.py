"""A repeated message: redelivered at an offset already applied, or published twice."""

from orderflow.domain.orders import Line, NewOrder
from orderflow.domain.saga import Placed, Position, Reserve, Start, Status, handle

ORDER = NewOrder("c-1", "USD", (Line("SKU-1", 2, 100),), "tok")


def started() -> tuple[Start, Position]:
    return Start("o-1", ORDER), Position("orders.commands", 41)


def test_the_offset_of_every_applied_message_is_remembered_per_source() -> None:
    start, position = started()
    state = handle(None, "m-1", start, 10.0, 15.0, position).state
    assert state is not None
    assert state.positions == {"orders.commands": 41}


def test_a_redelivery_re_issues_what_the_state_still_needs() -> None:
    start, position = started()
    state = handle(None, "m-1", start, 10.0, 15.0, position).state
    again = handle(state, "m-1", start, 11.0, 15.0, position)
    assert again.state is state
    assert again.outputs == (Placed(1), Reserve("SKU-1", 2))


def test_a_second_copy_at_a_newer_offset_sends_nothing() -> None:
    start, position = started()
    state = handle(None, "m-1", start, 10.0, 15.0, position).state
    copy = handle(state, "m-1", start, 11.0, 15.0, Position("orders.commands", 97))
    assert copy.state is state
    assert copy.outputs == ()


def test_offsets_of_another_source_do_not_count() -> None:
    start, position = started()
    state = handle(None, "m-1", start, 10.0, 15.0, position).state
    assert state is not None
    assert state.status is Status.RESERVING
    copy = handle(state, "m-1", start, 11.0, 15.0, Position("saga.replies", 5))
    assert copy.outputs == ()  # nothing from saga.replies was applied yet: offset 5 is newer

"""The load generator's pure parts: schedule, mix, order bodies, figures, the find-max search,
and how an event ends an order."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from orderflow import schemas, topics
from orderflow.cli import main
from orderflow.domain.orders import parse_new_order
from orderflow.loadgen import watcher
from orderflow.loadgen.plan import (
    MAX_ADJUSTMENT,
    Catalog,
    Kind,
    Mix,
    PlanError,
    kinds,
    order_body,
    send_offsets,
    stock_per_sku,
)
from orderflow.loadgen.search import RateSearch, judge
from orderflow.loadgen.stats import OrderRecord, percentile, summary_ms, window_report
from orderflow.views.inventory import MAX_DELTA

# -- the schedule and the mix ---------------------------------------------------------------


def test_orders_are_due_evenly_spaced_over_the_window() -> None:
    assert send_offsets(4, 1) == [0.0, 0.25, 0.5, 0.75]
    assert len(send_offsets(80, 30)) == 2400
    assert len(send_offsets(2.5, 3)) == 8  # 7.5 orders: the eighth is due at 2.8 s
    with pytest.raises(PlanError):
        send_offsets(0, 10)


def test_a_mix_is_read_as_fractions_or_percentages() -> None:
    mix = Mix.parse("decline=0.05, out-of-stock=5%,cancel=0.02")
    assert mix == Mix(decline=0.05, out_of_stock=0.05, cancel=0.02)
    assert mix.normal == pytest.approx(0.88)
    assert Mix.parse("") == Mix()
    assert Mix.parse(str(mix)) == mix


@pytest.mark.parametrize(
    "text",
    ["decline", "refund=0.1", "decline=abc", "decline=0.1,decline=0.2", "cancel=1.5",
     "decline=0.6,cancel=0.6"],
)  # fmt: skip
def test_a_bad_mix_is_refused(text: str) -> None:
    with pytest.raises(PlanError):
        Mix.parse(text)


@given(
    count=st.integers(0, 500),
    shares=st.lists(st.floats(0, 1), min_size=3, max_size=3).filter(lambda s: sum(s) <= 1),
)
def test_kinds_follow_the_mix_to_within_one_order(count: int, shares: list[float]) -> None:
    mix = Mix(*shares)
    drawn = Counter(kinds(mix, count, random.Random(3)))
    assert sum(drawn.values()) == count
    for kind, share in mix.shares().items():
        assert abs(drawn[kind] - share * count) < 1 + 1e-9


def test_kinds_are_the_same_for_the_same_seed() -> None:
    mix = Mix(decline=0.3, cancel=0.3)
    assert kinds(mix, 50, random.Random(9)) == kinds(mix, 50, random.Random(9))


# -- order bodies and stock -----------------------------------------------------------------


def test_order_bodies_are_valid_orders_of_the_intended_kind() -> None:
    catalog = Catalog.of("lgtest", 10, stock=100)
    rng = random.Random(1)
    normal = order_body(Kind.NORMAL, 7, catalog, 3, rng)
    order = parse_new_order(normal)  # what the API accepts
    assert len({line.sku for line in order.lines}) == 3
    assert {line.sku for line in order.lines} <= set(catalog.skus)
    assert order.payment_token == "tok_visa"
    assert parse_new_order(order_body(Kind.DECLINE, 8, catalog, 1, rng)).payment_token == (
        "tok_decline"
    )
    short = parse_new_order(order_body(Kind.OUT_OF_STOCK, 9, catalog, 2, rng))
    assert short.lines[-1].sku == catalog.empty_sku(9)
    assert short.lines[-1].sku not in catalog.skus
    with pytest.raises(PlanError):
        order_body(Kind.NORMAL, 1, catalog, 11, rng)


def test_stock_covers_twice_the_fair_share_within_one_adjustment() -> None:
    assert stock_per_sku(orders=24_000, lines=1, skus=100) == 480
    assert stock_per_sku(orders=10, lines=1, skus=100) == 100
    assert stock_per_sku(orders=10**9, lines=2, skus=1) == MAX_ADJUSTMENT
    assert MAX_ADJUSTMENT == MAX_DELTA  # what the adjustments API allows


# -- figures ---------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_orders_without_an_outcome_are_slower_than_any() -> None:
    summary = summary_ms([0.010] * 98, censored=2)
    assert summary["p50_ms"] == 10.0
    assert summary["p95_ms"] == 10.0
    assert summary["p99_ms"] is None  # among the orders with no outcome: unknown
    assert summary["max_ms"] is None
    assert summary_ms([]) == {
        "count": 0, "censored": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
        "max_ms": None,
    }  # fmt: skip


def record(index: int, kind: Kind = Kind.NORMAL, **fields: Any) -> OrderRecord:
    return OrderRecord(index, kind, due=100.0 + index * 0.1, **fields)


def test_a_window_report_counts_each_fate_of_an_order() -> None:
    records = [
        # confirmed inside the window (100 .. 101): 50 ms after its 202
        record(0, sent=100.0, accepted=100.01, order_id="a", outcome="confirmed",
               outcome_at=100.06),
        # declined, read after the window
        record(1, Kind.DECLINE, sent=100.1, accepted=100.12, order_id="b",
               outcome="rejected:payment_declined", outcome_at=101.5),
        # a normal order that was rejected: unexpected
        record(2, sent=100.2, accepted=100.21, order_id="c", outcome="rejected:out_of_stock",
               outcome_at=100.4),
        record(3, sent=100.3, error="HTTP 503"),
        record(4, sent=100.45, accepted=100.5, order_id="e"),  # still pending
        record(5),  # never sent
    ]  # fmt: skip
    report = window_report(records, rate=6, start=100.0, duration=1.0, end=102.0)
    assert report["offered"] == 6
    assert report["sent"] == 5
    assert report["not_sent"] == 1
    assert report["accepted"] == 4
    assert report["http_errors"] == {"HTTP 503": 1}
    assert report["completed"] == 3
    assert report["completed_in_window"] == 2
    assert report["completed_per_s"] == 2.0
    assert report["pending"] == 1
    assert report["followed_s"] == 1.0
    assert report["outcomes"] == {
        "confirmed": 1, "rejected:payment_declined": 1, "rejected:out_of_stock": 1,
    }  # fmt: skip
    assert report["unexpected_outcomes"] == {"normal->rejected:out_of_stock": 1}
    assert report["latency_ms"]["count"] == 3
    assert report["latency_ms"]["censored"] == 1
    assert report["latency_ms"]["p50_ms"] == 190.0
    assert report["latency_ms_by_kind"]["decline"]["p50_ms"] == 1380.0
    assert report["accept_ms"]["max_ms"] == 50.0
    assert report["sender_lateness_ms"]["max_ms"] == pytest.approx(50.0)


# -- find-max ---------------------------------------------------------------------------------


def report_with(p99_ms: float | None, completed: int, offered: int = 100) -> dict[str, Any]:
    return {"offered": offered, "completed_in_window": completed, "latency_ms": {"p99_ms": p99_ms}}


def test_a_window_holds_with_p99_under_the_bound_and_enough_completed() -> None:
    assert judge(report_with(120, 99), 300, 0.95).holds
    assert not judge(report_with(300, 99), 300, 0.95).holds
    assert not judge(report_with(None, 99), 300, 0.95).holds
    failed = judge(report_with(100, 90), 300, 0.95)
    assert not failed.holds
    assert "90.0%" in failed.reason


def run_search(search: RateSearch, capacity: float) -> list[float]:
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= capacity)
    return tried


def test_find_max_grows_then_bisects_to_the_resolution() -> None:
    search = RateSearch(start=20, ceiling=2000, resolution=5)
    tried = run_search(search, capacity=70)
    assert tried[:4] == [20, 40, 80, 60]
    assert search.held is not None
    assert search.failed is not None
    assert search.held <= 70 < search.failed
    assert search.failed - search.held <= 5


@given(capacity=st.floats(1, 3000), start=st.floats(1, 500))
def test_find_max_brackets_any_capacity(capacity: float, start: float) -> None:
    search = RateSearch(start=start, ceiling=2000, resolution=5, max_trials=40)
    run_search(search, capacity)
    if capacity >= 2000:
        assert search.held == 2000
    elif search.held is None:  # nothing held down to the floor
        assert capacity < 1 + 5
    else:
        assert search.held <= capacity
        assert search.failed is not None
        assert capacity < search.failed <= search.held + 5


def test_find_max_stops_after_its_trials() -> None:
    search = RateSearch(start=10, ceiling=10_000, resolution=0.1, max_trials=3)
    assert run_search(search, capacity=10_000) == [10, 20, 40]


def test_find_max_refuses_a_start_above_its_ceiling() -> None:
    with pytest.raises(PlanError):
        RateSearch(start=100, ceiling=50, resolution=5)


# -- outcomes from orders.events --------------------------------------------------------------


def test_the_watcher_reads_the_topic_and_records_of_the_platform() -> None:
    assert watcher.ORDERS_EVENTS == topics.ORDERS_EVENTS
    assert schemas.OrderPlaced._options.namespace == watcher.ORDER_PLACED
    assert schemas.OrderConfirmed._options.namespace == watcher.ORDER_CONFIRMED
    assert schemas.OrderRejected._options.namespace == watcher.ORDER_REJECTED
    assert schemas.OrderCancelled._options.namespace == watcher.ORDER_CANCELLED


def event(record_type: type[schemas.Message], **fields: Any) -> dict[str, Any]:
    return {"__faust": {"ns": record_type._options.namespace}, "order_id": "o-1", **fields}


def test_events_name_the_outcome() -> None:
    assert watcher.outcome_of(event(schemas.OrderConfirmed)) == "confirmed"
    assert watcher.outcome_of(event(schemas.OrderCancelled)) == "cancelled"
    assert watcher.outcome_of(event(schemas.OrderRejected, reason="timeout")) == "rejected:timeout"
    assert watcher.outcome_of(event(schemas.OrderPlaced)) == "placed"
    assert watcher.outcome_of({"order_id": "o-1"}) is None


def test_an_order_to_cancel_goes_on_past_its_confirmation() -> None:
    normal, to_cancel = record(0), record(1, Kind.CANCEL)
    assert watcher.ends(normal, "confirmed")
    assert not watcher.ends(normal, "placed")
    assert not watcher.ends(to_cancel, "confirmed")
    assert watcher.ends(to_cancel, "cancelled")
    assert watcher.ends(to_cancel, "rejected:out_of_stock")
    to_cancel.cancel_error = "HTTP 500"
    assert watcher.ends(to_cancel, "confirmed")


async def test_events_read_before_the_202_count_once_the_order_is_followed() -> None:
    placed: list[OrderRecord] = []
    reader = watcher.OutcomeWatcher("127.0.0.1:1", "orders.events", on_placed=placed.append)
    reader._handle(b'{"__faust": {"ns": "orderflow.OrderPlaced"}, "order_id": "o-9"}', 5.0)
    reader._handle(b'{"__faust": {"ns": "orderflow.OrderConfirmed"}, "order_id": "o-9"}', 5.5)
    reader._handle(b"not json", 5.6)
    to_cancel = record(0, Kind.CANCEL, sent=4.0, accepted=6.0, order_id="o-9")
    reader.follow(to_cancel)
    assert placed == [to_cancel]
    assert to_cancel.outcome is None  # confirmed, but a cancellation is coming
    reader._handle(b'{"__faust": {"ns": "orderflow.OrderCancelled"}, "order_id": "o-9"}', 7.0)
    assert to_cancel.outcome == "cancelled"
    assert to_cancel.latency == 1.0
    reader._handle(b'{"__faust": {"ns": "orderflow.OrderCancelled"}, "order_id": "o-9"}', 8.0)
    assert to_cancel.outcome_at == 7.0  # a repeated event changes nothing
    await reader.close()


def test_the_loadgen_command_refuses_more_lines_than_skus() -> None:
    result = CliRunner().invoke(main, ["loadgen", "--lines", "5", "--skus", "2"])
    assert result.exit_code == 2
    assert "--lines 5 is more than --skus 2" in result.output


def test_the_report_says_tokens_were_sent_and_never_holds_their_key() -> None:
    import orjson

    from orderflow.loadgen.cli import header
    from orderflow.loadgen.credentials import Credentials
    from orderflow.loadgen.plan import Catalog
    from orderflow.loadgen.runner import LoadOptions
    from orderflow.settings import Settings

    secret = "k" * 40
    settings = Settings(jwt_secret=secret)
    credentials = Credentials.from_settings(settings)
    assert credentials is not None
    credentials.customer("c-1")  # a token made and kept
    options = LoadOptions(workers=("http://127.0.0.1:6066",), credentials=credentials)
    report = orjson.dumps(header(settings, options, Catalog.of("lg1", 2, 100)))
    assert b'"credentials":"signed tokens"' in report
    assert secret.encode() not in report
    assert b"Bearer" not in report

"""The pure parts of the projection sink: reading documents off a topic and shaping them."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from orderflow import schemas
from orderflow.agents.read_models import project_order
from orderflow.domain.catalog import ProductView
from orderflow.projections.documents import (
    order_document,
    order_search_document,
    product_document,
    product_search_document,
)
from orderflow.projections.registry import PROJECTIONS
from orderflow.projections.sink import BatchAbandoned, NotADocument, Sink, latest_per_id, parse
from orderflow.projections.stores import Document, StoreUnavailable
from orderflow.resilience.breaker import BreakerConfig, CircuitBreaker
from orderflow.resilience.in_flight import InFlight
from orderflow.settings import Settings

PLACED_AT = "2026-11-21T10:00:00.000000+00:00"
CONFIRMED_AT = "2026-11-21T10:00:05.000000+00:00"


def order(version: int = 2, **changes: Any) -> dict[str, Any]:
    """An order document as the read model publishes it on orders.documents."""
    return {
        "order_id": "o-1",
        "customer_id": "c-1",
        "status": "CONFIRMED",
        "reason": None,
        "detail": None,
        "payment_id": "pay-1",
        "lines": [
            {"sku": "SKU-2", "quantity": 1, "unit_price": 1_000},
            {"sku": "SKU-1", "quantity": 2, "unit_price": 250},
            {"sku": "SKU-2", "quantity": 3, "unit_price": 1_000},
        ],
        "total": 4_500,
        "currency": "EUR",
        "placed_at": PLACED_AT,
        "updated_at": CONFIRMED_AT,
        "history": [
            {"status": "PENDING", "at": PLACED_AT},
            {"status": "CONFIRMED", "at": CONFIRMED_AT},
        ],
        "version": version,
        **changes,
    }


def product(version_offset: int = 4) -> dict[str, Any]:
    """A product document as the product read model publishes it on products.documents."""
    view = ProductView(
        "SKU-1",
        product={
            "name": "Kettle",
            "description": "Boils water.",
            "category": "kitchen",
            "price": 2_999,
            "currency": "EUR",
            "attributes": {"colour": "red"},
            "tags": ["steel"],
        },
        catalog_version=version_offset,
        on_hand=5,
        reserved=2,
        stock_version=10,
        updated_at=CONFIRMED_AT,
    )
    return view.document()


def as_bytes(body: Any) -> bytes:
    return orjson.dumps(body)


ORDERS_SEARCH = PROJECTIONS["orders-search"]
ORDERS_DOCUMENTS = PROJECTIONS["orders-documents"]
PRODUCTS_SEARCH = PROJECTIONS["products-search"]
PRODUCTS_DOCUMENTS = PROJECTIONS["products-documents"]


# --- the documents the read model makes ------------------------------------------------------


def test_the_order_of_these_tests_has_the_fields_of_the_read_model() -> None:
    event = schemas.OrderPlaced(
        **schemas.envelope("o-1"),
        order_id="o-1",
        customer_id="c-1",
        currency="EUR",
        lines=[schemas.OrderLine(sku="SKU-1", quantity=2, unit_price=250)],
        total=500,
        version=1,
    )
    placed = project_order(None, event)
    assert placed is not None
    assert set(placed) == set(order())
    assert parse("o-1", as_bytes(placed), ORDERS_SEARCH).body["skus"] == ["SKU-1"]


# --- parse -----------------------------------------------------------------------------------


def test_an_order_document_is_shaped_for_search() -> None:
    document = parse("o-1", as_bytes(order(version=7)), ORDERS_SEARCH)
    assert document == Document(
        "o-1",
        7,
        {
            "order_id": "o-1",
            "customer_id": "c-1",
            "status": "CONFIRMED",
            "reason": None,
            "skus": ["SKU-1", "SKU-2"],
            "quantity": 6,
            "total": 4_500,
            "currency": "EUR",
            "placed_at": PLACED_AT,
            "updated_at": CONFIRMED_AT,
        },
    )


def test_an_order_document_is_kept_whole_but_for_its_version() -> None:
    document = parse(b"o-1", as_bytes(order(version=3)), ORDERS_DOCUMENTS)
    expected = order()
    del expected["version"]
    assert document == Document("o-1", 3, expected)


def test_a_product_document_is_kept_whole_but_for_its_version() -> None:
    body = product()
    document = parse(b"SKU-1", as_bytes(body), PRODUCTS_DOCUMENTS)
    assert document.id == "SKU-1"
    assert document.version == body["version"] == 5 + 11
    assert "version" not in document.body
    assert document.body == {k: v for k, v in body.items() if k != "version"}


def test_a_product_search_document_carries_what_is_available() -> None:
    document = parse("SKU-1", as_bytes(product()), PRODUCTS_SEARCH)
    assert document.body["available"] == 5
    assert document.body["stock"] == {"on_hand": 5, "reserved": 2, "available": 5}
    assert "version" not in document.body


def test_a_bytes_key_is_decoded() -> None:
    assert parse(b"o-\xc3\xa9", as_bytes(order()), ORDERS_SEARCH).id == "o-\u00e9"
    assert parse(b"o-\xff", as_bytes(order()), ORDERS_SEARCH).id == "o-\ufffd"


def test_version_zero_is_a_version() -> None:
    assert parse("o-1", as_bytes(order(version=0)), ORDERS_SEARCH).version == 0


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b"{", b'{"order_id": "o-1",}', b"\xff\xfe"],
)
def test_a_value_that_is_not_json_is_not_a_document(value: bytes) -> None:
    with pytest.raises(NotADocument, match="not JSON"):
        parse("o-1", value, ORDERS_SEARCH)


@pytest.mark.parametrize("body", [[order()], "o-1", 3, None])
def test_a_value_that_is_not_an_object_is_not_a_document(body: Any) -> None:
    with pytest.raises(NotADocument, match="JSON object with a key"):
        parse("o-1", as_bytes(body), ORDERS_SEARCH)


@pytest.mark.parametrize("key", ["", b"", None])
def test_a_document_without_key_is_not_a_document(key: Any) -> None:
    with pytest.raises(NotADocument, match="JSON object with a key"):
        parse(key, as_bytes(order()), ORDERS_SEARCH)


@pytest.mark.parametrize("version", [None, -1, True, False, 1.0, "3"])
def test_a_document_needs_a_non_negative_integer_version(version: Any) -> None:
    with pytest.raises(NotADocument, match="non-negative integer version"):
        parse("o-1", as_bytes(order(version=version)), ORDERS_SEARCH)


def test_a_document_without_version_is_not_a_document() -> None:
    body = order()
    del body["version"]
    with pytest.raises(NotADocument, match="version"):
        parse("o-1", as_bytes(body), ORDERS_DOCUMENTS)


@pytest.mark.parametrize("missing", ["order_id", "customer_id", "status", "total", "placed_at"])
def test_an_order_missing_a_searched_field_is_not_a_document(missing: str) -> None:
    body = order()
    del body[missing]
    with pytest.raises(NotADocument, match=f"not a orders document: missing '{missing}'"):
        parse("o-1", as_bytes(body), ORDERS_SEARCH)


@pytest.mark.parametrize(
    "lines",
    [
        [{"quantity": 1, "unit_price": 5}],
        [{"sku": "SKU-1", "unit_price": 5}],
        [{"sku": "SKU-1", "quantity": "2"}],
        5,
        ["SKU-1"],
    ],
)
def test_an_order_with_malformed_lines_is_not_a_document(lines: Any) -> None:
    with pytest.raises(NotADocument, match="not a orders document"):
        parse("o-1", as_bytes(order(lines=lines)), ORDERS_SEARCH)


def test_an_order_without_lines_has_no_skus() -> None:
    body = order(lines=None)
    assert parse("o-1", as_bytes(body), ORDERS_SEARCH).body == {
        **order_search_document(order()),
        "skus": [],
        "quantity": 0,
    }


@pytest.mark.parametrize("stock", [None, {}, {"on_hand": 5}, "5"])
def test_a_product_without_available_stock_is_not_a_search_document(stock: Any) -> None:
    body = product()
    body["stock"] = stock
    with pytest.raises(NotADocument, match="not a products document"):
        parse("SKU-1", as_bytes(body), PRODUCTS_SEARCH)
    del body["stock"]
    with pytest.raises(NotADocument, match="not a products document: missing 'stock'"):
        parse("SKU-1", as_bytes(body), PRODUCTS_SEARCH)


# --- latest_per_id ---------------------------------------------------------------------------


def test_the_newest_version_of_each_id_is_kept() -> None:
    batch = [
        Document("a", 1, {"n": 1}),
        Document("b", 5, {"n": 2}),
        Document("a", 3, {"n": 3}),
        Document("a", 2, {"n": 4}),
        Document("c", 0, {"n": 5}),
        Document("b", 4, {"n": 6}),
    ]
    assert latest_per_id(batch) == [
        Document("a", 3, {"n": 3}),
        Document("b", 5, {"n": 2}),
        Document("c", 0, {"n": 5}),
    ]


def test_of_equal_versions_the_first_is_kept() -> None:
    batch = [Document("a", 2, {"n": 1}), Document("a", 2, {"n": 2})]
    assert latest_per_id(batch) == [Document("a", 2, {"n": 1})]


def test_an_empty_batch_keeps_nothing() -> None:
    assert latest_per_id([]) == []


# --- documents -------------------------------------------------------------------------------


def test_the_search_document_of_an_order_sums_its_lines() -> None:
    shaped = order_search_document(order())
    assert shaped["skus"] == ["SKU-1", "SKU-2"]
    assert shaped["quantity"] == 6
    assert "lines" not in shaped
    assert "history" not in shaped
    assert "version" not in shaped


def test_the_search_document_of_a_rejected_order_keeps_the_reason() -> None:
    shaped = order_search_document(order(status="REJECTED", reason="out_of_stock", lines=[]))
    assert (shaped["status"], shaped["reason"]) == ("REJECTED", "out_of_stock")
    assert (shaped["skus"], shaped["quantity"]) == ([], 0)


def test_an_order_document_without_reason_has_none() -> None:
    body = order()
    del body["reason"]
    assert order_search_document(body)["reason"] is None


def test_shaping_does_not_change_the_read_models_document() -> None:
    body = order()
    before = copy.deepcopy(body)
    order_document(body)
    order_search_document(body)
    assert body == before
    item = product()
    kept = copy.deepcopy(item)
    product_document(item)
    product_search_document(item)
    assert item == kept


def test_the_search_document_of_a_product_adds_what_is_available() -> None:
    body = product()
    shaped = product_search_document(body)
    assert shaped == {**product_document(body), "available": 5}
    assert "version" not in shaped
    assert "version" in body


def test_a_product_with_negative_stock_has_nothing_available() -> None:
    body = ProductView("SKU-9", on_hand=-2, catalog_version=0).document()
    assert product_search_document(body)["available"] == 0


class FlakyStore:
    """A store that refuses the first ``failures`` writes as unavailable, then keeps them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[Document] = []

    async def prepare(self) -> None:
        pass

    async def write(self, documents: Any, target: str | None = None) -> list[Any]:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down for now")
        self.written.extend(documents)
        return []


def sink_on(store: FlakyStore) -> tuple[Sink, SimpleNamespace]:
    settings = replace(
        Settings(), retry_max_attempts=3, retry_base_delay=0.05, retry_max_delay=0.05
    )
    breaker = CircuitBreaker("store", BreakerConfig(failure_threshold=100))
    app = SimpleNamespace(
        settings=settings,
        breaker=lambda name: breaker,
        held_topics=set(),
        rebalancing=False,
        should_stop=False,
        in_flight=InFlight(),
    )
    return Sink(app, PROJECTIONS["orders-documents"], store), app


DOCUMENTS = [Document("o-1", 3, {"status": "CONFIRMED"})]


async def test_a_store_that_comes_back_gets_the_batch() -> None:
    store = FlakyStore(failures=4)
    sink, app = sink_on(store)
    rejections, attempts = await sink._write(DOCUMENTS)
    assert (rejections, attempts, store.written) == ([], 5, DOCUMENTS)
    assert app.held_topics == set()  # held while it was retried, released once written


async def test_past_max_attempts_the_topic_is_held_and_the_sink_keeps_trying() -> None:
    store = FlakyStore(failures=1_000)
    sink, app = sink_on(store)  # max_attempts=3
    third_refusal = asyncio.Event()
    write = store.write

    async def counted(documents: Any, target: str | None = None) -> list[Any]:
        try:
            return await write(documents, target)
        finally:
            if store.failures == 1_000 - 3:
                third_refusal.set()

    store.write = counted  # type: ignore[method-assign]
    writing = asyncio.create_task(sink._write(DOCUMENTS))
    await asyncio.wait_for(third_refusal.wait(), 2)
    assert app.held_topics == {sink.topic}
    assert not writing.done()
    store.failures = 0
    rejections, attempts = await asyncio.wait_for(writing, 1)
    assert (rejections, store.written) == ([], DOCUMENTS)
    assert attempts > 3
    assert app.held_topics == set()


async def test_an_error_that_will_not_pass_is_raised_at_once() -> None:
    store = FlakyStore(failures=0)
    sink, app = sink_on(store)
    calls: list[int] = []

    async def refuse(documents: Any, target: str | None = None) -> list[Any]:
        calls.append(1)
        raise ValueError("mapping error")

    store.write = refuse  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="mapping error"):
        await sink._write(DOCUMENTS)
    assert (calls, app.held_topics) == ([1], set())


@pytest.mark.parametrize("interruption", ["rebalancing", "should_stop"])
async def test_a_rebalance_or_a_stop_makes_the_sink_give_up_a_batch_the_store_refuses(
    interruption: str,
) -> None:
    store = FlakyStore(failures=1_000)
    sink, app = sink_on(store)
    writing = asyncio.create_task(sink._write(DOCUMENTS))
    await asyncio.sleep(0.3)
    assert not writing.done()  # retrying: the store is down
    setattr(app, interruption, True)
    with pytest.raises(BatchAbandoned):
        await asyncio.wait_for(writing, 1)
    assert store.written == []


class BatchStream:
    """Hands the sink fixed batches, as noack_take would, and records what it acknowledges;
    ``between`` runs before each batch after the first."""

    def __init__(self, *batches: list[Any], between: Callable[[], None] = lambda: None) -> None:
        self.batches = batches
        self.between = between
        self.acked: list[Any] = []

    def noack_take(self, size: int, within: float) -> AsyncIterator[list[Any]]:
        async def batches() -> AsyncIterator[list[Any]]:
            for index, batch in enumerate(self.batches):
                if index:
                    self.between()
                yield batch

        return batches()

    async def ack(self, event: Any) -> None:
        self.acked.append(event)


def document_event(version: int) -> Any:
    return SimpleNamespace(key=b"o-1", value=as_bytes(order(version=version)))


@pytest.mark.parametrize("stop_over", [False, True])
async def test_after_giving_a_batch_up_the_sink_acknowledges_nothing_until_the_stop_is_over(
    stop_over: bool,
) -> None:
    store = FlakyStore(failures=1_000)
    sink, app = sink_on(store)
    first, second = document_event(2), document_event(3)

    def between() -> None:
        if stop_over:  # as when a rebalance has completed
            app.should_stop = False

    stream = BatchStream([first], [second], between=between)
    running = asyncio.create_task(sink.run(stream))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    assert not running.done()  # retrying the first batch: the store is down
    store.failures = 0  # the store is back just as the stop begins
    app.should_stop = True
    await asyncio.wait_for(running, 2)
    if stop_over:
        assert (stream.acked, [d.version for d in store.written]) == ([second], [3])
    else:
        # Acknowledging the second batch could let the commit pass over the first one.
        assert (stream.acked, store.written) == ([], [])


class WorkerEnded(Exception):
    """What ``end_worker`` would have done: the process ends there."""


async def test_a_sink_that_fails_ends_the_worker_and_acknowledges_nothing() -> None:
    store = FlakyStore(failures=0)
    sink, _app = sink_on(store)
    reasons: list[str] = []

    def end(reason: str) -> None:
        reasons.append(reason)
        raise WorkerEnded(reason)

    sink.fail = end  # type: ignore[method-assign]

    async def refuse(documents: Any, target: str | None = None) -> list[Any]:
        raise ValueError("mapping error")  # not transient: the batch goes to the DLQ ...

    store.write = refuse  # type: ignore[method-assign]
    # ... and the dead-letter topic cannot be written (this app has none): that escapes.
    stream = BatchStream([document_event(2)], [document_event(3)])
    with pytest.raises(WorkerEnded):
        await asyncio.wait_for(sink.run(stream), 2)  # type: ignore[arg-type]
    assert stream.acked == []
    assert len(reasons) == 1
    assert "orders-documents: the sink failed" in reasons[0]

"""The agents, run by Faust's test_context(): no broker, in-memory tables, and in-memory Faust
channels in place of the topics they send to, so each test sees exactly what an agent sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import faust
import orjson
import pytest
from prometheus_client import REGISTRY

from orderflow import schemas
from orderflow.agents import catalog as catalog_agent
from orderflow.agents import notifications as notifications_agent
from orderflow.app import create_app
from orderflow.domain.inventory import InconsistentStock, StockLevel
from orderflow.domain.notifications import Notification
from orderflow.domain.saga import Status
from orderflow.notifications.channels import ChannelUnavailable
from orderflow.resilience import dlq, handling
from orderflow.schemas.codec import decode
from orderflow.settings import Settings
from orderflow.tables import codecs
from tests.support.auth import TEST_JWT_SECRET

# The whole platform, wired by the composition root, with in-memory tables.
app = create_app(Settings(store="memory://", jwt_secret=TEST_JWT_SECRET))
tables = app.data


def agent_named(name: str) -> faust.types.AgentT:
    """One of the platform's agents, by its module and function name."""
    return app.agents[f"orderflow.agents.{name}"]


OUTBOUND = ("inventory_commands", "payments_commands", "orders_events", "saga_replies",
            "inventory_events", "catalog_events", "orders_documents",
            "products_documents")  # fmt: skip


class Outbox:
    """What the agent under test sent, per topic attribute of the app's bus."""

    def __init__(self, channels: dict[str, Any]) -> None:
        self._readers = {
            name: channel.clone(is_iterator=True) for name, channel in channels.items()
        }

    async def drain(self, name: str) -> list[tuple[str, schemas.Message]]:
        reader = self._readers[name]
        sent = []
        while not reader.empty():
            event = await reader.get()
            sent.append((event.key, decode(event.value)))
        return sent

    async def documents(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        reader = self._readers[name]
        sent = []
        while not reader.empty():
            event = await reader.get()
            sent.append((event.key, orjson.loads(event.value)))
        return sent


@pytest.fixture(autouse=True)
def in_memory_app() -> Iterator[None]:
    app.finalize()
    app.flow_control.resume()
    yield
    for table in tables.by_name.values():
        table.table.data.clear()


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Outbox:
    channels = {name: app.channel() for name in OUTBOUND}
    for name, channel in channels.items():
        monkeypatch.setattr(app.bus, name, channel)
    return Outbox(channels)


def place_order(order_id: str, *lines: tuple[str, int]) -> schemas.PlaceOrder:
    return schemas.PlaceOrder(
        **schemas.envelope(order_id),
        order_id=order_id,
        customer_id="c-1",
        currency="USD",
        lines=[schemas.OrderLine(sku=sku, quantity=q, unit_price=250) for sku, q in lines],
        payment_token="tok_visa",
    )


@pytest.fixture
async def saga() -> AsyncIterator[faust.types.AgentT]:
    async with agent_named("saga.order_saga").test_context() as agent:
        yield agent


async def test_a_placed_order_reserves_every_line_and_publishes_order_placed(
    saga: Any, outbox: Outbox
) -> None:
    await saga.put(place_order("o-1", ("SKU-1", 2), ("SKU-2", 1)).dumps(), key="o-1")

    state = tables.sagas.get("o-1")
    assert state is not None
    assert state.status is Status.RESERVING
    assert tables.saga_deadlines.get("o-1") == state.deadline
    reserves = await outbox.drain("inventory_commands")
    assert [(key, type(v).__name__, v.quantity) for key, v in reserves] == [
        ("SKU-1", "ReserveStock", 2),
        ("SKU-2", "ReserveStock", 1),
    ]
    assert all(v.correlation_id == "o-1" for _, v in reserves)
    [(key, placed)] = await outbox.drain("orders_events")
    assert key == "o-1"
    assert isinstance(placed, schemas.OrderPlaced)
    assert placed.total == 750


async def test_replies_drive_the_saga_to_confirmation(saga: Any, outbox: Outbox) -> None:
    place = place_order("o-2", ("SKU-1", 1))
    await saga.put(place.dumps(), key="o-2")
    reserved = schemas.StockReserved(
        **schemas.caused_by(place), order_id="o-2", sku="SKU-1", quantity=1
    )
    await saga.put(reserved.dumps(), key="o-2")
    [(_, authorize)] = await outbox.drain("payments_commands")
    assert isinstance(authorize, schemas.AuthorizePayment)
    assert (authorize.amount, authorize.currency, authorize.token) == (250, "USD", "tok_visa")

    authorized = schemas.PaymentAuthorized(
        **schemas.caused_by(authorize), order_id="o-2", payment_id="p1"
    )
    await saga.put(authorized.dumps(), key="o-2")
    state = tables.sagas.get("o-2")
    assert state is not None
    assert state.status is Status.CONFIRMED
    assert tables.saga_deadlines.get("o-2") is None
    events = [type(v).__name__ for _, v in await outbox.drain("orders_events")]
    assert events == ["OrderPlaced", "OrderConfirmed"]


async def test_a_redelivered_command_resends_what_the_state_needs_without_changing_it(
    saga: Any, outbox: Outbox
) -> None:
    place = place_order("o-3", ("SKU-1", 1))
    await saga.put(place.dumps(), key="o-3")
    before = tables.sagas.get("o-3")
    await outbox.drain("inventory_commands")

    saga.sent_offset -= 1  # Kafka hands the same offset out again after a crash
    await saga.put(place.dumps(), key="o-3")

    assert tables.sagas.get("o-3") == before
    again = await outbox.drain("inventory_commands")
    assert [type(v).__name__ for _, v in again] == ["ReserveStock"]


async def test_a_command_published_twice_changes_nothing_and_sends_nothing(
    saga: Any, outbox: Outbox
) -> None:
    place = place_order("o-7", ("SKU-1", 1))
    await saga.put(place.dumps(), key="o-7")
    before = tables.sagas.get("o-7")
    await outbox.drain("inventory_commands")
    await outbox.drain("orders_events")

    await saga.put(place.dumps(), key="o-7")  # the same event id at a newer offset: a second copy

    assert tables.sagas.get("o-7") == before
    assert await outbox.drain("inventory_commands") == []
    assert await outbox.drain("orders_events") == []


async def test_the_inventory_reserves_replies_and_publishes_the_new_level(outbox: Outbox) -> None:
    async with agent_named("inventory.stock_keeper").test_context() as agent:
        adjust = schemas.AdjustStock(**schemas.envelope("SKU-9"), sku="SKU-9", delta=5, reason="r")
        await agent.put(adjust.dumps(), key="SKU-9")
        reserve = schemas.ReserveStock(
            **schemas.envelope("o-4"), order_id="o-4", sku="SKU-9", quantity=3
        )
        await agent.put(reserve.dumps(), key="SKU-9")
        too_many = schemas.ReserveStock(
            **schemas.envelope("o-5"), order_id="o-5", sku="SKU-9", quantity=3
        )
        await agent.put(too_many.dumps(), key="SKU-9")

    level = tables.stock_level("SKU-9")
    assert level is not None
    assert (level.on_hand, level.reserved) == (2, 3)
    replies = [(k, type(v).__name__) for k, v in await outbox.drain("saga_replies")]
    assert replies == [("o-4", "StockReserved"), ("o-5", "StockRejected")]
    levels = [(v.on_hand, v.reserved) for _, v in await outbox.drain("inventory_events")]
    assert levels == [(5, 0), (2, 3)]


async def test_a_level_that_applied_a_reserve_without_its_reservation_is_dead_lettered(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state one changelog partition rules out (see orderflow.domain.inventory): the
    command goes to the DLQ with the reason, and nothing is replied or changed."""
    dead: list[dlq.Failure] = []

    async def record(app: Any, message: Any, failure: dlq.Failure) -> None:
        dead.append(failure)

    monkeypatch.setattr(handling, "dead_letter", record)
    level = StockLevel(on_hand=5, reserved=2, offset=1_000)  # past any offset of this test
    tables.inventory.table.data["SKU-8"] = codecs.encode(level)
    async with agent_named("inventory.stock_keeper").test_context() as agent:
        reserve = schemas.ReserveStock(
            **schemas.envelope("o-8"), order_id="o-8", sku="SKU-8", quantity=2
        )
        await agent.put(reserve.dumps(), key="SKU-8")

    assert [type(f.error) for f in dead] == [InconsistentStock]
    assert "holds no reservation for order o-8" in str(dead[0].error)
    assert tables.stock_level("SKU-8") == level
    assert await outbox.drain("saga_replies") == []


async def test_the_order_document_follows_the_events(outbox: Outbox) -> None:
    placed = schemas.OrderPlaced(
        **schemas.envelope("o-6"),
        order_id="o-6",
        customer_id="c-1",
        currency="EUR",
        lines=[schemas.OrderLine(sku="SKU-1", quantity=1, unit_price=100)],
        total=100,
        version=1,
    )
    rejected = schemas.OrderRejected(
        **schemas.caused_by(placed),
        order_id="o-6",
        customer_id="c-1",
        reason="out_of_stock",
        detail="SKU-1: requested 1, available 0",
        version=2,
    )
    async with agent_named("read_models.order_documents").test_context() as agent:
        await agent.put(placed.dumps(), key="o-6")
        await agent.put(rejected.dumps(), key="o-6")
        await agent.put(placed.dumps(), key="o-6")  # a late repeat changes nothing

    view = tables.orders_view.get("o-6")
    assert view is not None
    assert (view["status"], view["reason"], view["version"]) == ("REJECTED", "out_of_stock", 2)
    assert [h["status"] for h in view["history"]] == ["PENDING", "REJECTED"]
    # Each change went to orders.documents for the stores; the late repeat did not.
    sent = await outbox.documents("orders_documents")
    assert [(key, doc["status"], doc["version"]) for key, doc in sent] == [
        ("o-6", "PENDING", 1),
        ("o-6", "REJECTED", 2),
    ]


def upsert_product(product_id: str, price: int) -> schemas.UpsertProduct:
    return schemas.UpsertProduct(
        **schemas.envelope(product_id),
        product_id=product_id,
        name="Red Mug",
        description="A stoneware mug.",
        category="kitchen",
        price=price,
        currency="EUR",
        attributes={"colour": "red"},
        tags=["mug"],
    )


async def test_the_catalog_versions_every_change_by_its_offset(outbox: Outbox) -> None:
    delete = schemas.DeleteProduct(**schemas.envelope("MUG"), product_id="MUG")
    async with agent_named("catalog.catalog_keeper").test_context() as agent:
        await agent.put(upsert_product("MUG", 1299).dumps(), key="MUG")
        await agent.put(upsert_product("MUG", 1499).dumps(), key="MUG")
        await agent.put(delete.dumps(), key="MUG")
        await agent.put(delete.dumps(), key="MUG")  # deleting what is gone records nothing

    sent = [event for _, event in await outbox.drain("catalog_events")]
    assert [type(event).__name__ for event in sent] == [
        "ProductUpserted",
        "ProductUpserted",
        "ProductDeleted",
    ]
    versions = [event.version for event in sent]
    assert versions == sorted(set(versions))
    assert isinstance(sent[1], schemas.ProductUpserted)
    assert sent[1].price == 1499
    entry = tables.catalog.get("MUG")
    assert entry is not None
    assert (entry.product, entry.version) == (None, versions[-1])


async def test_the_product_document_joins_catalog_and_stock(outbox: Outbox) -> None:
    def upserted(version: int, price: int) -> schemas.ProductUpserted:
        command = upsert_product("MUG", price)
        fields = {name: getattr(command, name) for name in catalog_agent.catalog.PRODUCT_FIELDS}
        envelope = schemas.envelope("MUG")
        return schemas.ProductUpserted(**envelope, product_id="MUG", **fields, version=version)

    stock = schemas.StockLevelChanged(
        **schemas.envelope("MUG"), sku="MUG", on_hand=7, reserved=2, version=5
    )
    async with agent_named("catalog.product_documents").test_context() as agent:
        await agent.put(stock.dumps(), key="MUG")  # stock first: no document yet
        await agent.put(upserted(3, 1299).dumps(), key="MUG")
        await agent.put(upserted(2, 999).dumps(), key="MUG")  # stale: nothing
        await agent.put(upserted(3, 1299).dumps(), key="MUG")  # a repeat: sent again

    sent = [doc for _, doc in await outbox.documents("products_documents")]
    assert [(d["price"], d["stock"]["available"], d["version"]) for d in sent] == [
        (1299, 7, (3 + 1) + (5 + 1)),
        (1299, 7, (3 + 1) + (5 + 1)),
    ]
    assert sent[0]["in_stock"] is True
    assert sent[0]["deleted"] is False


class RecordingChannel:
    """A channel that keeps what it was handed (the real webhook is tested in integration)."""

    name = "recording"

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[Notification] = []
        self.failures = failures

    async def send(self, notification: Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise ChannelUnavailable("down for now")
        self.sent.append(notification)

    async def close(self) -> None:
        pass


def outcome(order_id: str, kind: str) -> schemas.Message:
    envelope = schemas.envelope(order_id)
    if kind == "confirmed":
        return schemas.OrderConfirmed(
            **envelope, order_id=order_id, customer_id="c-9", payment_id="pay-1", version=4
        )
    return schemas.OrderCancelled(
        **envelope, order_id=order_id, customer_id="c-9", reason="customer_request", version=6
    )


async def run_notifications(
    monkeypatch: pytest.MonkeyPatch, channel: RecordingChannel | None, *events: schemas.Message
) -> None:
    monkeypatch.setattr(notifications_agent, "configured_channel", lambda settings: channel)
    before = handled("notifications")
    async with agent_named("notifications.customer_notifications").test_context() as agent:
        for event in events:
            await agent.put(event.dumps(), key=event.correlation_id)
        # Events are handled in batches, and a retried delivery ends after put() returns:
        # wait until every event is handled.
        async with asyncio.timeout(10):
            while handled("notifications") < before + len(events):  # noqa: ASYNC110 (a metric)
                await asyncio.sleep(0.01)


def handled(handler: str) -> float:
    """Messages the handler has finished (orderflow_events_processed_total)."""
    count = REGISTRY.get_sample_value("orderflow_events_processed_total", {"handler": handler})
    return count or 0.0


async def test_each_outcome_is_notified_once_however_often_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = RecordingChannel()
    confirmed = outcome("o-n1", "confirmed")
    again = outcome("o-n1", "confirmed")  # re-sent with a new event id
    await run_notifications(
        monkeypatch, channel, confirmed, confirmed, again, outcome("o-n1", "cancel")
    )
    assert [n.id for n in channel.sent] == ["o-n1/order_confirmed", "o-n1/order_cancelled"]
    history = tables.notifications.get("o-n1")
    assert history is not None
    assert [(h["kind"], h["channel"], h["status"]) for h in history] == [
        ("order_confirmed", "recording", "sent"),
        ("order_cancelled", "recording", "sent"),
    ]


async def test_a_channel_that_is_down_for_now_gets_the_notification_on_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = RecordingChannel(failures=2)
    await run_notifications(monkeypatch, channel, outcome("o-n2", "confirmed"))
    assert [n.id for n in channel.sent] == ["o-n2/order_confirmed"]
    history = tables.notifications.get("o-n2")
    assert history is not None
    assert len(history) == 1


async def test_without_a_channel_notifications_are_recorded_as_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await run_notifications(monkeypatch, None, outcome("o-n3", "confirmed"))
    history = tables.notifications.get("o-n3")
    assert history is not None
    assert [(h["channel"], h["status"]) for h in history] == [("none", "skipped")]

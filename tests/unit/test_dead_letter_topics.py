"""The dead-letter admin API reads and replays this deployment's dead-letter topics only."""

from __future__ import annotations

from typing import Any

import pytest

from orderflow.resilience.dlq import is_dead_letter_topic
from orderflow.settings import Settings
from orderflow.views import dead_letters
from tests.support import auth
from tests.support.auth import TEST_JWT_SECRET
from tests.support.views import FakeApp, call

PREFIX = "shop."
REKEYED = (
    "orderflow.agents.read_models.customer_order_lists-shop.orders.events"
    "-orders-by-customer-repartition.dlq"
)


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("shop.orders.commands.dlq", True),
        ("shop.payments.commands.dlq", True),
        ("shop.products.documents.dlq", True),
        (REKEYED, True),
        ("shop.orders.commands", False),
        ("__consumer_offsets", False),
        ("__consumer_offsets.dlq", False),
        ("orderflow-orders_view-changelog", False),
        ("orderflow-orders_view-changelog.dlq", False),
        ("other.orders.commands.dlq", False),
        ("shop.unknown.dlq", False),
        ("shop.orders.commands.dlq.dlq", False),
        ("evil-shop.orders.events-x-repartition.dlq", False),
    ],
)
def test_which_topics_are_the_deployments_dead_letter_topics(name: str, own: bool) -> None:
    assert is_dead_letter_topic(name, PREFIX) == own


def app() -> FakeApp:
    return FakeApp(Settings(jwt_secret=TEST_JWT_SECRET, topic_prefix=PREFIX))


@pytest.mark.parametrize("topic", ["__consumer_offsets", "orderflow-sagas-changelog"])
async def test_other_topics_are_neither_read_nor_replayed(
    topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []

    async def read(bootstrap: str, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        touched.append(name)
        return []

    monkeypatch.setattr(dead_letters, "read", read)
    monkeypatch.setattr(dead_letters, "replay", read)
    path = f"/api/v1/admin/dlq/{topic}"
    answer = await call(
        dead_letters.DeadLetterRecords, "GET", path, {"topic": topic}, auth.admin(), app=app()
    )
    assert (answer.status, answer.content_type) == (404, "application/problem+json")
    assert answer.body["detail"] == f"{topic} is not a dead-letter topic of this deployment"
    answer = await call(
        dead_letters.DeadLetterReplay,
        "POST",
        f"{path}/replay",
        {"topic": topic},
        auth.admin(),
        body=b'{"dry_run": true}',
        app=app(),
    )
    assert answer.status == 404
    assert touched == []
    # The deployment's own are read.
    own = "shop.orders.commands.dlq"
    answer = await call(
        dead_letters.DeadLetterRecords,
        "GET",
        f"/api/v1/admin/dlq/{own}",
        {"topic": own},
        auth.admin(),
        app=app(),
    )
    assert (answer.status, answer.body) == (200, {"topic": own, "records": []})
    assert touched == [own]


async def test_the_list_holds_the_deployments_topics_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def every(bootstrap: str, marker: str) -> list[dict[str, Any]]:
        names = ["shop.orders.commands.dlq", "shop.x-changelog.dlq", REKEYED]
        return [{"topic": name, "records": 1} for name in names]

    monkeypatch.setattr(dead_letters, "dead_letter_topics", every)
    answer = await call(
        dead_letters.DeadLetterTopics, "GET", "/api/v1/admin/dlq", {}, auth.admin(), app=app()
    )
    assert [t["topic"] for t in answer.body["topics"]] == ["shop.orders.commands.dlq", REKEYED]

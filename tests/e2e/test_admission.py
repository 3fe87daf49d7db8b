"""New orders are refused at the door (503 + Retry-After) while the saga is too far behind,
and taken again once it caught up; nothing is stored for a refused order.

The backlog is real: an outbox row that can never be published (set aside) holds back a later
row of its aggregate, whose age is what the worker samples from PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import fresh_database
from tests.support import auth
from tests.support.workers import WorkerProcess, free_port

MAX_OUTBOX_AGE = 2.0
ORDER = {
    "customer_id": "c-admission",
    "currency": "USD",
    "lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": 100}],
    "payment": {"token": "tok_visa"},
}


@pytest.fixture(scope="module")
def database(postgres: str, run_id: str) -> Iterator[str]:
    with fresh_database(postgres, f"orderflow_{run_id}_admission") as url:
        yield url


@pytest.fixture(scope="module")
def api(
    kafka_bootstrap: str, database: str, run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("admission")
    worker = WorkerProcess(
        "orderflow.app",
        {
            "ORDERFLOW_APP_ID": f"{run_id}-admission",
            "ORDERFLOW_TOPIC_PREFIX": f"{run_id}.admission.",
            "ORDERFLOW_BROKER_URL": f"kafka://{kafka_bootstrap}",
            "ORDERFLOW_DATABASE_URL": database,
            "ORDERFLOW_TOPIC_PARTITIONS": "2",
            "ORDERFLOW_WEB_PORT": str(free_port()),
            "ORDERFLOW_DATA_DIR": str(tmp / "data"),
            "ORDERFLOW_INTAKE_MAX_OUTBOX_AGE": str(MAX_OUTBOX_AGE),
        },
        Path(tmp / "worker.log"),
    )
    worker.start()
    try:
        worker.wait_ready()
        yield f"{worker.url}/api/v1"
    finally:
        worker.stop()


def place(api: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"{api}/orders",
        data=orjson.dumps(ORDER),
        method="POST",
        headers={"Content-Type": "application/json", **auth.customer(ORDER["customer_id"])},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), orjson.loads(error.read())


def place_until(api: str, status: int, within: float = 15.0) -> tuple[dict[str, str], Any]:
    deadline = time.monotonic() + within
    while True:
        code, headers, body = place(api)
        if code == status:
            return headers, body
        assert time.monotonic() < deadline, f"still {code} after {within} s: {body}"
        time.sleep(0.25)


async def hold_back_the_outbox(database: str, aggregate: str) -> None:
    """A set-aside row, and behind it a row of the same aggregate waiting for a minute."""
    connection = await asyncpg.connect(database)
    try:
        await connection.execute(
            """INSERT INTO outbox (aggregate_id, event_id, topic, key, payload, failed_at,
                                   last_error, created_at)
               VALUES ($1, $2, 'no-such-topic', 'k', '\\x00', now(), 'test',
                       now() - interval '2 minutes'),
                      ($1, $3, 'no-such-topic', 'k', '\\x00', NULL, NULL,
                       now() - interval '1 minute')""",
            aggregate,
            uuid.uuid4().hex,
            uuid.uuid4().hex,
        )
    finally:
        await connection.close()


async def release_the_outbox(database: str, aggregate: str) -> None:
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DELETE FROM outbox WHERE aggregate_id = $1", aggregate)
    finally:
        await connection.close()


async def intake_rows(database: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM order_intake")
        return count
    finally:
        await connection.close()


def test_orders_are_refused_while_the_outbox_is_behind_and_taken_again_after(
    api: str, database: str
) -> None:
    place_until(api, 202)
    aggregate = f"stuck-{uuid.uuid4().hex}"
    asyncio.run(hold_back_the_outbox(database, aggregate))
    try:
        headers, problem = place_until(api, 503)
        before = asyncio.run(intake_rows(database))
        code, headers, problem = place(api)
        assert code == 503
        assert headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(headers["Retry-After"]) <= 30
        assert "not taken right now" in problem["detail"]
        assert "wait" in problem["detail"]
        assert asyncio.run(intake_rows(database)) == before  # nothing stored for a refusal
    finally:
        asyncio.run(release_the_outbox(database, aggregate))
    _, accepted = place_until(api, 202)
    assert accepted["status"] == "PENDING"

"""Who may do what, on two real workers: a customer reaches only its own orders through either
worker (a forwarded request carries the caller's identity to the key's owner, which checks it
against the data it holds), admin operations refuse customers, and bad tokens are 401s.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support import auth
from tests.support.read_models import customer_lists
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers, running

PARTITIONS = 4
SKU = "SKU-ACCESS"
ORDERS_EACH = 3


@pytest.fixture(scope="module")
def workers(
    kafka_bootstrap: str,
    database_url: str,
    elasticsearch: str,
    mongodb: str,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[WorkerProcess]]:
    tmp = tmp_path_factory.mktemp("access")
    with PaymentSimulator(tmp / "payment-sim.log") as simulator:
        processes = platform_workers(
            2,
            tmp,
            name=f"{run_id}-access",
            kafka=kafka_bootstrap,
            partitions=PARTITIONS,
            database_url=database_url,
            gateway=simulator.url,
            session_timeout="6",
            elasticsearch_url=elasticsearch,
            mongodb_url=mongodb,
        )
        with running(processes):
            yield processes


class Client:
    """One identity's HTTP calls (no identity: ``headers`` empty)."""

    def __init__(self, session: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        self.session = session
        self.headers = headers

    async def call(
        self, method: str, url: str, body: Any = None, **headers: str
    ) -> tuple[int, Any, Any]:
        sent = {**self.headers, **headers}
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(method, url, data=data, headers=sent) as response:
            raw = await response.read()
            return response.status, orjson.loads(raw) if raw else None, response.headers


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
        yield client


@pytest.fixture(scope="module")
def customers(run_id: str) -> tuple[str, str]:
    return f"{run_id}-alice", f"{run_id}-bob"


@pytest.fixture(scope="module")
def placed(workers: list[WorkerProcess], customers: tuple[str, str]) -> dict[str, list[str]]:
    """Each customer's confirmed orders, placed through both workers."""

    async def place() -> dict[str, list[str]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            admin = Client(session, auth.admin())
            status, _, _ = await admin.call(
                "POST",
                f"{workers[0].url}/api/v1/inventory/{SKU}/adjustments",
                {"delta": 1000, "reason": "access"},
            )
            assert status == 202
            orders: dict[str, list[str]] = {}
            for customer_id in customers:
                client = Client(session, auth.customer(customer_id))
                orders[customer_id] = []
                for index in range(ORDERS_EACH):
                    worker = workers[index % 2]
                    # customer_id is left out: it is taken from the token.
                    status, accepted, _ = await client.call(
                        "POST",
                        f"{worker.url}/api/v1/orders",
                        {
                            "currency": "USD",
                            "lines": [{"sku": SKU, "quantity": 1, "unit_price": 100}],
                            "payment": {"token": "tok_visa"},
                        },
                    )
                    assert status == 202, accepted
                    orders[customer_id].append(accepted["order_id"])
            for customer_id, order_ids in orders.items():
                client = Client(session, auth.customer(customer_id))
                for order_id in order_ids:
                    url = f"{workers[1].url}/api/v1/orders/{order_id}?wait=30"
                    status, view, _ = await client.call("GET", url)
                    assert (status, view["status"], view["customer_id"]) == (
                        200,
                        "CONFIRMED",
                        customer_id,
                    )
            return orders

    return asyncio.run(place())


def _assert_problem(status: int, body: Any, headers: Any, expected: int) -> None:
    assert status == expected, body
    assert headers["Content-Type"] == "application/problem+json"
    assert body["status"] == expected
    assert "Traceback" not in body["detail"]


async def test_a_customer_reads_only_its_own_orders_through_either_worker(
    workers: list[WorkerProcess],
    placed: dict[str, list[str]],
    customers: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    alice, bob = customers
    as_alice = Client(session, auth.customer(alice))
    as_bob = Client(session, auth.customer(bob))
    for order_id in placed[alice]:
        # Every order is owned by one of the two workers, so one of them forwards each request:
        # a 200 for alice there means the owner verified her forwarded token, a 404 for bob
        # that it applied his.
        for worker in workers:
            url = f"{worker.url}/api/v1/orders/{order_id}"
            status, view, _ = await as_alice.call("GET", url)
            assert (status, view["customer_id"]) == (200, alice)
            status, problem, headers = await as_bob.call("GET", url)
            _assert_problem(status, problem, headers, 404)
            # Exactly what an order that does not exist looks like: ids cannot be probed.
            missing = await as_bob.call("GET", f"{worker.url}/api/v1/orders/{'0' * 32}")
            assert problem["detail"].replace(order_id, "X") == missing[1]["detail"].replace(
                "0" * 32, "X"
            )
            status, problem, headers = await as_bob.call("GET", f"{url}/notifications")
            _assert_problem(status, problem, headers, 404)
            status, notes, _ = await as_alice.call("GET", f"{url}/notifications")
            assert (status, notes["order_id"]) == (200, order_id)


async def test_a_customer_cannot_cancel_another_customers_order(
    workers: list[WorkerProcess],
    placed: dict[str, list[str]],
    customers: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    alice, bob = customers
    as_bob = Client(session, auth.customer(bob))
    order_id = placed[alice][0]
    for worker in workers:
        status, problem, headers = await as_bob.call(
            "POST", f"{worker.url}/api/v1/orders/{order_id}/cancel", {"reason": "mine now"}
        )
        _assert_problem(status, problem, headers, 404)
    await asyncio.sleep(1)
    status, view, _ = await Client(session, auth.customer(alice)).call(
        "GET", f"{workers[0].url}/api/v1/orders/{order_id}"
    )
    assert (status, view["status"]) == (200, "CONFIRMED")


async def test_a_customer_lists_and_searches_only_its_own_orders(
    workers: list[WorkerProcess],
    placed: dict[str, list[str]],
    customers: tuple[str, str],
    session: aiohttp.ClientSession,
) -> None:
    alice, bob = customers
    as_alice = Client(session, auth.customer(alice))
    as_bob = Client(session, auth.customer(bob))
    for worker in workers:
        status, problem, headers = await as_bob.call(
            "GET", f"{worker.url}/api/v1/customers/{alice}/orders"
        )
        _assert_problem(status, problem, headers, 404)
    alice_session = aiohttp.ClientSession(headers=auth.customer(alice))
    async with alice_session:
        for worker in workers:
            expected = {alice: dict.fromkeys(placed[alice], "CONFIRMED")}
            listed = await customer_lists(alice_session, f"{worker.url}/api/v1", expected)
            assert listed == expected
    # Search trails the order documents by the sink: wait until each sees its own orders.
    deadline = time.monotonic() + 60
    while True:
        found = {}
        for name, client in ((alice, as_alice), (bob, as_bob)):
            status, page, _ = await client.call(
                "GET", f"{workers[1].url}/api/v1/orders/search?size=100"
            )
            assert status == 200
            found[name] = {(o["order_id"], o["customer_id"]) for o in page["orders"]}
        if all(len(found[n]) == ORDERS_EACH for n in customers) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for name in customers:
        assert found[name] == {(order_id, name) for order_id in placed[name]}
    # Asking for someone else's orders finds nothing, through either worker.
    for worker in workers:
        status, page, _ = await as_bob.call(
            "GET", f"{worker.url}/api/v1/orders/search?customer={alice}"
        )
        assert (status, page["total"], page["orders"]) == (200, 0, [])
    status, page, _ = await Client(session, auth.service()).call(
        "GET", f"{workers[0].url}/api/v1/orders/search?customer={alice}&size=100"
    )
    assert {o["order_id"] for o in page["orders"]} == set(placed[alice])


async def test_a_customer_places_orders_only_for_itself(
    workers: list[WorkerProcess], customers: tuple[str, str], session: aiohttp.ClientSession
) -> None:
    alice, bob = customers
    body = {
        "customer_id": alice,
        "currency": "USD",
        "lines": [{"sku": SKU, "quantity": 1, "unit_price": 100}],
        "payment": {"token": "tok_visa"},
    }
    status, problem, headers = await Client(session, auth.customer(bob)).call(
        "POST", f"{workers[0].url}/api/v1/orders", body
    )
    _assert_problem(status, problem, headers, 403)
    # A service acts for any customer, and must say which.
    status, accepted, _ = await Client(session, auth.service()).call(
        "POST", f"{workers[1].url}/api/v1/orders", body
    )
    assert status == 202
    status, view, _ = await Client(session, auth.customer(alice)).call(
        "GET", f"{workers[0].url}/api/v1/orders/{accepted['order_id']}"
    )
    assert (status, view["customer_id"]) == (200, alice)


ADMIN_OPERATIONS = [
    ("POST", f"/api/v1/inventory/{SKU}/adjustments", {"delta": 5, "reason": "mine"}),
    ("PUT", "/api/v1/products/P-1", {"name": "x", "category": "y", "price": 1, "currency": "USD"}),
    ("DELETE", "/api/v1/products/P-1", None),
    ("GET", "/api/v1/admin/dlq", None),
    ("GET", "/api/v1/admin/dlq/orders.commands.dlq", None),
    ("POST", "/api/v1/admin/dlq/orders.commands.dlq/replay", {"dry_run": True}),
    ("GET", "/api/v1/admin/outbox", None),
    ("GET", "/api/v1/admin/tables", None),
    ("GET", "/api/v1/admin/tables/orders_view/scan", None),
    ("GET", "/api/v1/admin/tables/orders_view/keys/x", None),
    ("GET", "/api/v1/sagas/x", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_OPERATIONS)
async def test_admin_operations_refuse_customers_and_services(
    workers: list[WorkerProcess],
    customers: tuple[str, str],
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
) -> None:
    for headers in (auth.customer(customers[0]), auth.service()):
        status, problem, answer = await Client(session, headers).call(
            method, workers[0].url + path, body
        )
        _assert_problem(status, problem, answer, 403)
        assert 'error="insufficient_scope"' in answer["WWW-Authenticate"]
    status, problem, answer = await Client(session, {}).call(method, workers[1].url + path, body)
    _assert_problem(status, problem, answer, 401)
    assert answer["WWW-Authenticate"].startswith("Bearer")


async def test_an_admin_scans_the_tables_of_both_workers(
    workers: list[WorkerProcess], placed: dict[str, list[str]], session: aiohttp.ClientSession
) -> None:
    # The scan asks the other worker too, with the admin's token.
    status, scan, _ = await Client(session, auth.admin()).call(
        "GET", f"{workers[0].url}/api/v1/admin/tables/orders_view/scan?limit=1000"
    )
    assert status == 200, scan
    assert not scan.get("errors"), scan
    keys = {item["key"] for item in scan["items"]}
    assert set(placed[next(iter(placed))]) <= keys


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _unsigned_admin() -> str:
    """An admin token with ``alg: none``: no signature at all."""
    expires = int(time.time()) + 60
    claims = {"sub": "c-1", "roles": ["admin"], "iss": "orderflow", "aud": "orderflow"}
    return _unsigned({**claims, "exp": expires})


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (lambda: f"Bearer {auth.token('c-1', 'customer', ttl=-120)}", "invalid_token"),
        (lambda: f"Bearer {auth.token('c-1', 'customer', secret='x' * 40)}", "invalid_token"),
        (lambda: f"Bearer {_unsigned_admin()}", "invalid_token"),
        (lambda: "Bearer not.a.token", "invalid_token"),
        (lambda: "Bearer " + "A" * 6000, "invalid_token"),
        (lambda: "Basic dXNlcjpwYXNz", None),
    ],
)
async def test_bad_credentials_answer_401_with_a_bearer_challenge(
    workers: list[WorkerProcess],
    placed: dict[str, list[str]],
    session: aiohttp.ClientSession,
    authorization: Any,
    error: str | None,
) -> None:
    order_id = next(iter(placed.values()))[0]
    for url in (f"/api/v1/orders/{order_id}", "/api/v1/products/search?q=mug"):
        status, problem, headers = await Client(session, {}).call(
            "GET", workers[1].url + url, Authorization=authorization()
        )
        _assert_problem(status, problem, headers, 401)
        challenge = headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="orderflow"')
        assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)


async def test_health_metrics_and_the_catalog_need_no_token(
    workers: list[WorkerProcess], session: aiohttp.ClientSession
) -> None:
    anonymous = Client(session, {})
    for path in ("/healthz", "/readyz"):
        status, _, _ = await anonymous.call("GET", workers[0].url + path)
        assert status == 200
    async with session.get(workers[0].url + "/metrics") as response:
        assert response.status == 200
    status, page, _ = await anonymous.call("GET", f"{workers[0].url}/api/v1/products/search")
    assert status == 200
    assert "products" in page

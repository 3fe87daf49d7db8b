"""The HTTP contract of a real worker: validation, problem+json, long-polls, cancellation rules,
and the saga timer (a payment step that outlives its deadline is compensated with `timeout`)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import auth
from tests.support.workers import PaymentSimulator, WorkerProcess, free_port, http_get

STEP_TIMEOUT = 5.0
STEP_ATTEMPTS = 2  # a late step is asked once more before the saga compensates
# The gateway call outlives the saga's step deadline (every ask), so the timer acts first.
PAYMENT_TIMEOUT = STEP_TIMEOUT * STEP_ATTEMPTS + 3


@pytest.fixture(scope="module")
def api(
    kafka_bootstrap: str,
    database_url: str,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("http-api")
    with PaymentSimulator(tmp / "sim.log") as simulator:
        yield from _worker(kafka_bootstrap, database_url, run_id, tmp, simulator.url)


def _worker(
    kafka_bootstrap: str, database_url: str, run_id: str, tmp: Path, gateway: str
) -> Iterator[str]:
    worker = WorkerProcess(
        "orderflow.app",
        {
            "ORDERFLOW_APP_ID": f"{run_id}-http",
            "ORDERFLOW_TOPIC_PREFIX": f"{run_id}.http.",
            "ORDERFLOW_BROKER_URL": f"kafka://{kafka_bootstrap}",
            "ORDERFLOW_DATABASE_URL": database_url,
            "ORDERFLOW_TOPIC_PARTITIONS": "2",
            "ORDERFLOW_WEB_PORT": str(free_port()),
            "ORDERFLOW_DATA_DIR": str(tmp / "data"),
            "ORDERFLOW_PAYMENT_GATEWAY_URL": gateway,
            "ORDERFLOW_PAYMENT_TIMEOUT": str(PAYMENT_TIMEOUT),
            "ORDERFLOW_SAGA_STEP_TIMEOUT": str(STEP_TIMEOUT),
            "ORDERFLOW_SAGA_STEP_ATTEMPTS": str(STEP_ATTEMPTS),
        },
        tmp / "worker.log",
    )
    worker.start()
    try:
        worker.wait_ready()
        api = f"{worker.url}/api/v1"
        # The first order of a new deployment waits for topic metadata and group joins: let it
        # pass before the tests that hold the pipeline to a short step deadline.
        stock(api, "SKU-WARMUP", 1)
        _, _, accepted = request(
            "POST",
            f"{api}/orders",
            order(lines=[{"sku": "SKU-WARMUP", "quantity": 1, "unit_price": 1}]),
        )
        request("GET", f"{api}/orders/{accepted['order_id']}?wait=30")
        yield api
    finally:
        worker.stop()


def request(
    method: str, url: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, str, Any]:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type, **auth.admin()}
    )
    try:
        with urllib.request.urlopen(req, timeout=40) as response:
            return response.status, response.headers["Content-Type"], _json(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], _json(error.read())


def _json(raw: bytes) -> Any:
    return orjson.loads(raw) if raw else None


def order(**overrides: Any) -> bytes:
    body = {
        "customer_id": "c-http",
        "currency": "USD",
        "lines": [{"sku": "SKU-H", "quantity": 1, "unit_price": 500}],
        "payment": {"token": "tok_visa"},
        **overrides,
    }
    return orjson.dumps(body)


def stock(api: str, sku: str, quantity: int) -> None:
    status, _, _ = request(
        "POST",
        f"{api}/inventory/{sku}/adjustments",
        orjson.dumps({"delta": quantity, "reason": "test"}),
    )
    assert status == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, level = request("GET", f"{api}/inventory/{sku}")
        if status == 200 and level["on_hand"] >= quantity:
            return
        time.sleep(0.1)
    raise AssertionError(f"{sku} was not stocked")


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        (b"{not json", 400, []),
        (b"", 400, []),
        (b"[1, 2]", 422, ["$"]),
        (order(lines=[]), 422, ["lines"]),
        (order(currency="XYZ"), 422, ["currency"]),
        (order(lines=[{"sku": "A", "quantity": 0, "unit_price": 1}]), 422, ["lines[0].quantity"]),
        (
            order(lines=[{"sku": "A", "quantity": 1, "unit_price": -5}]),
            422,
            ["lines[0].unit_price"],
        ),
        (order(lines=[{"sku": "A", "quantity": "2", "unit_price": 1}]), 422, ["lines[0].quantity"]),
        (order(customer_id=None, payment={}), 422, ["customer_id", "payment.token"]),
        (order(lines=[{"sku": "A/B", "quantity": 1, "unit_price": 1}]), 422, ["lines[0].sku"]),
    ],
)
def test_invalid_orders_are_refused_with_a_problem_naming_the_field(
    api: str, body: bytes, status: int, fields: list[str]
) -> None:
    code, content_type, problem = request("POST", f"{api}/orders", body)
    assert code == status
    assert content_type == "application/problem+json"
    assert problem["status"] == status
    assert problem["detail"]
    assert [error["field"] for error in problem.get("errors", [])] == fields


def test_unknown_things_are_404_problems(api: str) -> None:
    for path in ("orders/nope", "sagas/nope", "inventory/NO-SUCH-SKU", "orders/nope/notifications"):
        code, content_type, problem = request("GET", f"{api}/{path}")
        assert (code, content_type) == (404, "application/problem+json"), path
        assert "nope" in problem["detail"] or "NO-SUCH-SKU" in problem["detail"]
    code, _, problem = request("POST", f"{api}/orders/nope/cancel")
    assert code == 404


def test_wait_is_validated(api: str) -> None:
    for wait in ("-1", "31", "soon"):
        code, content_type, problem = request("GET", f"{api}/orders/any?wait={wait}")
        assert (code, content_type) == (400, "application/problem+json")
        assert "wait must be" in problem["detail"]


def test_a_long_poll_returns_the_outcome_and_location_points_at_it(api: str) -> None:
    stock(api, "SKU-H", 10)
    code, _, accepted = request("POST", f"{api}/orders", order())
    assert code == 202
    started = time.monotonic()
    code, _, view = request("GET", f"{api}/orders/{accepted['order_id']}?wait=20")
    assert code == 200
    assert view["status"] == "CONFIRMED"
    assert time.monotonic() - started < 20
    assert view["total"] == 500
    assert [h["status"] for h in view["history"]] == ["PENDING", "CONFIRMED"]


def test_the_inventory_table_holds_the_level_and_each_reservation(api: str) -> None:
    stock(api, "SKU-R", 4)
    code, _, accepted = request(
        "POST", f"{api}/orders", order(lines=[{"sku": "SKU-R", "quantity": 3, "unit_price": 1}])
    )
    order_id = accepted["order_id"]
    code, _, view = request("GET", f"{api}/orders/{order_id}?wait=20")
    assert view["status"] == "CONFIRMED"

    keys = f"{api}/admin/tables/inventory/keys"
    code, _, level = request("GET", f"{keys}/SKU-R")
    assert code == 200
    assert (level["value"]["on_hand"], level["value"]["reserved"]) == (1, 3)
    code, _, held = request("GET", f"{keys}/SKU-R%2F{order_id}")
    assert code == 200
    assert (held["value"]["quantity"], held["value"]["status"]) == (3, "RESERVED")
    code, _, tables = request("GET", f"{api}/admin/tables")
    assert "inventory" in [table["name"] for table in tables["tables"]]


def test_a_closed_order_cannot_be_cancelled_again(api: str) -> None:
    code, _, accepted = request("POST", f"{api}/orders", order(payment={"token": "tok_decline"}))
    assert code == 202
    order_id = accepted["order_id"]
    code, _, view = request("GET", f"{api}/orders/{order_id}?wait=20")
    assert (view["status"], view["reason"], view["detail"]) == (
        "REJECTED",
        "payment_declined",
        "card_declined",
    )
    code, content_type, problem = request("POST", f"{api}/orders/{order_id}/cancel")
    assert (code, content_type) == (409, "application/problem+json")
    assert "already REJECTED" in problem["detail"]


def test_an_order_can_be_cancelled_the_moment_it_is_accepted(api: str) -> None:
    """The cancel follows the 202 at once, before any read model has seen the order."""
    stock(api, "SKU-C", 3)
    body = order(lines=[{"sku": "SKU-C", "quantity": 2, "unit_price": 100}])
    code, _, accepted = request("POST", f"{api}/orders", body)
    assert code == 202
    order_id = accepted["order_id"]
    code, _, cancellation = request("POST", f"{api}/orders/{order_id}/cancel")
    assert code == 202, cancellation
    assert cancellation["cancellation"] == "accepted"
    code, _, view = request("GET", f"{api}/orders/{order_id}?wait=20")
    assert (view["status"], view["reason"]) == ("CANCELLED", "customer_request")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, _, level = request("GET", f"{api}/inventory/SKU-C")
        if (level["on_hand"], level["reserved"]) == (3, 0):
            break
        time.sleep(0.2)
    assert (level["on_hand"], level["reserved"]) == (3, 0)


def test_a_step_past_its_deadline_is_compensated_by_the_timer(api: str) -> None:
    stock(api, "SKU-T", 5)
    body = order(
        lines=[{"sku": "SKU-T", "quantity": 2, "unit_price": 100}], payment={"token": "tok_timeout"}
    )
    code, _, accepted = request("POST", f"{api}/orders", body)
    assert code == 202
    order_id = accepted["order_id"]
    code, _, view = request("GET", f"{api}/orders/{order_id}?wait=25")
    assert view["status"] == "REJECTED"
    assert view["reason"] == "timeout"
    assert view["detail"] == "no answer to the payment step within 10s (asked 2 times)"
    # The gateway's late answer changes nothing, and the stock is back.
    time.sleep(PAYMENT_TIMEOUT - STEP_TIMEOUT * STEP_ATTEMPTS + 1)
    code, _, saga = request("GET", f"{api}/sagas/{order_id}")
    assert saga["status"] == "REJECTED"
    assert saga["reason"] == "timeout"
    code, _, level = request("GET", f"{api}/inventory/SKU-T")
    assert (level["on_hand"], level["reserved"]) == (5, 0)


def test_health_endpoints(api: str) -> None:
    base = api.removesuffix("/api/v1")
    assert http_get(f"{base}/healthz") == (200, {"status": "alive"})
    status, ready = http_get(f"{base}/readyz")
    assert status == 200
    assert ready["tables_recovered"] is True

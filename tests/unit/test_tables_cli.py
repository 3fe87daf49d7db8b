"""``orderflow tables`` against a real HTTP server that answers like a worker's admin API.

The server serves canned documents in the shape of the admin endpoints: these tests check the
CLI's requests, its output and its errors; the endpoints themselves are tested on real workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from orderflow.cli import main
from tests.support.workers import free_port

TABLES = {
    "tables": [
        {
            "name": "inventory",
            "help": "Stock per sku and per order line.",
            "partitions": 8,
            "changelog_topic": "orderflow-inventory-changelog",
        },
        {
            "name": "sagas",
            "help": "The state of every order's saga.",
            "partitions": 8,
            "changelog_topic": "orderflow-sagas-changelog",
        },
    ]
}
VALUES = {
    ("inventory", "SKU-1"): {"on_hand": 5, "reserved": 2, "offset": 41},
    ("inventory", "SKU-1/order-9"): {"quantity": 2, "status": "RESERVED", "offset": 40},
}
WORKERS = ["http://127.0.0.1:6066", "http://127.0.0.1:6067"]


def _problem(status: int, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": "Not Found", "status": status, "detail": detail}
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/problem+json"
    )


def _scan_answer(table: str, prefix: str, limit: int) -> dict[str, object]:
    if table == "inventory":  # every worker answered, more keys match than the limit
        items = [{"key": f"SKU-{n}", "value": {"on_hand": n, "reserved": 0}} for n in (1, 2)]
        workers = [{"url": url, "items": 1, "error": None} for url in WORKERS]
        return {"table": table, "prefix": prefix, "items": items[:limit], "truncated": True,
                "complete": True, "missing_partitions": [], "workers": workers}  # fmt: skip
    # one worker did not answer: its partitions are missing from the answer
    workers = [
        {"url": WORKERS[0], "items": 1, "error": None},
        {"url": WORKERS[1], "items": 0, "error": "no answer within 10 s"},
    ]
    return {"table": table, "prefix": prefix, "truncated": False, "complete": False,
            "items": [{"key": "order-9", "value": {"status": "PENDING"}}],
            "missing_partitions": [4, 5, 6, 7], "workers": workers}  # fmt: skip


@dataclass
class FakeWorker:
    url: str
    port: int
    requests: list[str] = field(default_factory=list)  # path and query of each request


@pytest.fixture
async def worker() -> AsyncIterator[FakeWorker]:
    fake = FakeWorker(url="", port=0)

    async def tables(request: web.Request) -> web.StreamResponse:
        fake.requests.append(request.path_qs)
        return web.json_response(TABLES)

    async def key(request: web.Request) -> web.StreamResponse:
        fake.requests.append(request.raw_path)
        table, key = request.match_info["table"], request.match_info["key"]
        if table not in {t["name"] for t in TABLES["tables"]}:
            return _problem(404, f"no table {table!r}; the tables are inventory, sagas")
        if (table, key) not in VALUES:
            return _problem(404, f"no key {key!r} in table {table}")
        return web.json_response({"table": table, "key": key, "value": VALUES[table, key]})

    async def scan(request: web.Request) -> web.StreamResponse:
        fake.requests.append(request.path_qs)
        query = request.query
        answer = _scan_answer(request.match_info["table"], query["prefix"], int(query["limit"]))
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/api/v1/admin/tables", tables)
    app.router.add_get("/api/v1/admin/tables/{table}/keys/{key:.+}", key)
    app.router.add_get("/api/v1/admin/tables/{table}/scan", scan)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{fake.port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


async def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    # The CLI's HTTP call blocks: it runs in a thread while this loop serves the fake worker.
    return await asyncio.to_thread(CliRunner().invoke, main, ["tables", *args], env=env)


async def test_list_prints_aligned_columns(worker: FakeWorker) -> None:
    result = await _cli("list", "--url", worker.url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "TABLE      PARTITIONS  CHANGELOG TOPIC                DESCRIPTION",
        "inventory  8           orderflow-inventory-changelog  Stock per sku and per order line.",
        "sagas      8           orderflow-sagas-changelog      The state of every order's saga.",
    ]


async def test_the_default_url_is_the_local_worker_of_the_settings(worker: FakeWorker) -> None:
    result = await _cli("list", "--json", env={"ORDERFLOW_WEB_PORT": str(worker.port)})

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == TABLES
    assert worker.requests == ["/api/v1/admin/tables"]


async def test_get_pretty_prints_the_value(worker: FakeWorker) -> None:
    result = await _cli("get", "inventory", "SKU-1", "--url", worker.url)

    assert result.exit_code == 0, result.output
    assert result.stdout == '{\n  "on_hand": 5,\n  "reserved": 2,\n  "offset": 41\n}\n'


async def test_get_sends_a_key_with_a_slash_as_one_path_segment(worker: FakeWorker) -> None:
    result = await _cli("get", "inventory", "SKU-1/order-9", "--url", worker.url, "--json")

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["key"] == "SKU-1/order-9"
    assert worker.requests == ["/api/v1/admin/tables/inventory/keys/SKU-1%2Forder-9"]


async def test_get_of_a_missing_key_prints_the_problem_detail(worker: FakeWorker) -> None:
    result = await _cli("get", "inventory", "SKU-404", "--url", worker.url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: no key 'SKU-404' in table inventory\n"


async def test_an_unknown_table_prints_the_known_ones(worker: FakeWorker) -> None:
    result = await _cli("get", "nope", "k", "--url", worker.url)

    assert result.exit_code == 1
    assert result.stderr == "error: no table 'nope'; the tables are inventory, sagas\n"


async def test_scan_prints_one_line_per_key(worker: FakeWorker) -> None:
    result = await _cli(
        "scan", "inventory", "--prefix", "SKU-", "--limit", "2", "--url", worker.url
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        'SKU-1  {"on_hand":1,"reserved":0}',
        'SKU-2  {"on_hand":2,"reserved":0}',
    ]
    assert "more match" in result.stderr
    assert "partial" not in result.stderr
    assert worker.requests == ["/api/v1/admin/tables/inventory/scan?prefix=SKU-&limit=2"]


async def test_scan_says_when_the_answer_is_partial(worker: FakeWorker) -> None:
    result = await _cli("scan", "sagas", "--url", worker.url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ['order-9  {"status":"PENDING"}']
    assert result.stderr.splitlines() == [
        "warning: partial answer, keys may be missing:",
        f"  {WORKERS[1]} did not answer: no answer within 10 s",
        "  partitions nobody scanned: 4, 5, 6, 7",
    ]
    assert worker.requests == ["/api/v1/admin/tables/sagas/scan?prefix=&limit=100"]


async def test_scan_json_prints_the_answer_as_it_is(worker: FakeWorker) -> None:
    result = await _cli("scan", "sagas", "--json", "--url", worker.url)

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == _scan_answer("sagas", "", 100)
    assert result.stderr == ""


async def test_scan_refuses_a_limit_out_of_range_before_any_request(worker: FakeWorker) -> None:
    result = await _cli("scan", "inventory", "--limit", "1001", "--url", worker.url)

    assert result.exit_code == 2
    assert "--limit" in result.stderr
    assert worker.requests == []


async def test_no_worker_listening_names_the_url_and_orderflow_run() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = await _cli("list", "--url", url)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no orderflow worker answers at {url} (connection refused); "
        "start the platform with `orderflow run`, or pass --url\n"
    )

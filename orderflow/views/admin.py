"""Table inspection for operators: list the tables, read one key, scan keys by prefix.

A key is read on the worker that owns it (any worker forwards the request there). A scan asks
every worker of the group for the keys of its active partitions (``local-scan``) and merges
the answers; a worker that does not answer makes the answer partial, and it says so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import orjson
from faust.types import AppT
from faust.web import Request, Response
from yarl import URL

from orderflow.db import DatabaseUnavailable
from orderflow.sinks.outbox_relay import outbox_lag
from orderflow.tables.typed import TypedTable
from orderflow.views.access import ADMIN, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response
from orderflow.views.scans import MAX_LIMIT, WorkerScan, merge, parse_limit, select

log = logging.getLogger(__name__)

SCAN_TIMEOUT = aiohttp.ClientTimeout(total=10)


def scan_parameters() -> list[dict[str, Any]]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    prefix = {"type": "string", "maxLength": MAX_PREFIX}
    return [
        {"name": "prefix", "in": "query", "required": False, "schema": prefix},
        {"name": "limit", "in": "query", "required": False, "schema": limit},
    ]


def _typed(view: ApiView, name: str) -> TypedTable[Any]:
    every = view.platform.data.by_name
    typed = every.get(name)
    if typed is None:
        known = sorted(every)
        raise Problem(404, f"no table {name!r}; the tables are {', '.join(known)}", tables=known)
    return typed


def _same_worker(url: str, other: Any) -> bool:
    return URL(url).origin() == URL(str(other)).origin()


class Tables(ApiView):
    operations = serves(get=Operation("Every table", ADMIN, "admin"))

    async def get(self, request: Request) -> Response:
        described = [
            {
                "name": typed.name,
                "help": typed.table.help,
                "partitions": typed.table.partitions,
                "changelog_topic": typed.changelog_topic,
            }
            for typed in self.platform.data.by_name.values()
        ]
        return json_response(self, {"tables": described})


# {key:.+} accepts keys with slashes (an inventory reservation is 'sku/order id'), sent as they
# are or as %2F.
class TableKey(ApiView):
    operations = serves(
        get=Operation("One key of a table, from its owner", ADMIN, "admin", errors=(404, 503))
    )

    async def get(self, request: Request, table: str, key: str) -> Response:
        typed = _typed(self, table)

        async def answer() -> Response:
            raw = typed.raw_json(key)
            if raw is None:
                raise Problem(404, f"no key {key!r} in table {table}")
            return json_response(self, {"table": table, "key": key, "value": orjson.loads(raw)})

        return await self.routed(request, typed, key, answer)


class TableLocalScan(ApiView):
    """The matching keys of this worker's active partitions only."""

    operations = serves(
        get=Operation(
            "Keys of this worker's partitions",
            ADMIN,
            "admin",
            query=scan_parameters,
            errors=(400, 404),
        )
    )

    async def get(self, request: Request, table: str) -> Response:
        typed = _typed(self, table)
        scan = local_scan(self.app, typed, _prefix(request), _limit(request))
        return json_response(
            self,
            {
                "worker": scan.url,
                "items": scan.items,
                "truncated": scan.truncated,
                "partitions": scan.partitions,
            },
        )


class TableScan(ApiView):
    """The matching keys of every worker, merged."""

    operations = serves(
        get=Operation(
            "Keys of every worker, merged",
            ADMIN,
            "admin",
            query=scan_parameters,
            errors=(400, 404, 503),
        )
    )

    async def get(self, request: Request, table: str) -> Response:
        typed = _typed(self, table)
        prefix, limit = _prefix(request), _limit(request)
        workers = sorted(self.app.router.table_metadata(typed.name))
        if not workers:
            raise Problem(503, "no worker holds this table right now (the group is rebalancing)")
        authorization = request.headers.get("Authorization")
        scans = await asyncio.gather(
            *(self._scan(url, typed, prefix, limit, authorization) for url in workers)
        )
        merged = merge(scans, limit, int(typed.table.partitions))
        return json_response(self, {"table": typed.name, "prefix": prefix, **merged})

    async def _scan(
        self, url: str, typed: TypedTable[Any], prefix: str, limit: int, authorization: str | None
    ) -> WorkerScan:
        if _same_worker(url, self.app.conf.canonical_url):
            return local_scan(self.app, typed, prefix, limit)
        target = URL(url).with_path(f"/api/v1/admin/tables/{typed.name}/local-scan")
        target = target.with_query(prefix=prefix, limit=limit)
        # The client's token goes along (the other worker checks it again), with a signed
        # mark so that the scan is charged to the client once, here.
        headers = {
            "Accept": "application/json",
            **self.guard.forward_headers(
                "GET",
                str(target.relative()),
                b"",
                str(self.app.conf.canonical_url),
                authorization,
            ),
        }
        try:
            async with self.app.http_client.get(
                target, headers=headers, timeout=SCAN_TIMEOUT
            ) as answer:
                body = await answer.read()
                status = answer.status
        except TimeoutError:
            return WorkerScan(url, error=f"no answer within {SCAN_TIMEOUT.total:g} s")
        except aiohttp.ClientError as error:
            return WorkerScan(url, error=f"{type(error).__name__}: {error}")
        return _worker_scan(url, status, body)


def local_scan(app: AppT, typed: TypedTable[Any], prefix: str, limit: int) -> WorkerScan:
    """What this worker holds: ``table.items()`` iterates the active partitions' stores only."""
    topic = typed.changelog_topic
    partitions = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)
    items, truncated = select(typed.table.items(), prefix, limit)
    return WorkerScan(str(app.conf.canonical_url), items, truncated, partitions)


def _worker_scan(url: str, status: int, body: bytes) -> WorkerScan:
    """Another worker's local-scan answer, or the reason it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if status != 200:
        detail = document.get("detail") if isinstance(document, dict) else None
        return WorkerScan(url, error=f"HTTP {status}" + (f": {detail}" if detail else ""))
    try:
        return WorkerScan(
            url,
            items=list(document["items"]),
            truncated=bool(document["truncated"]),
            partitions=[int(partition) for partition in document["partitions"]],
        )
    except (TypeError, KeyError, ValueError):
        return WorkerScan(url, error="the answer is not a local-scan document")


MAX_PREFIX = 256


def _prefix(request: Request) -> str:
    prefix = request.query.get("prefix", "")
    if len(prefix) > MAX_PREFIX:
        raise Problem(400, f"prefix may be at most {MAX_PREFIX} characters")
    return prefix


def _limit(request: Request) -> int:
    return parse_limit(request.query.get("limit"))


class Outbox(ApiView):
    """The outbox relay's lag: rows not yet published and the age of the oldest."""

    operations = serves(get=Operation("The outbox relay's lag", ADMIN, "admin", errors=(503,)))

    async def get(self, request: Request) -> Response:
        try:
            lag = await outbox_lag(self.platform.database)
        except DatabaseUnavailable as error:
            log.warning("reading the outbox failed: %s", error)
            raise Problem(503, "the database is unavailable right now; retry later") from None
        return json_response(self, lag)


ROUTES = {
    "/api/v1/admin/tables": Tables,
    "/api/v1/admin/tables/{table}/keys/{key:.+}": TableKey,
    "/api/v1/admin/tables/{table}/local-scan": TableLocalScan,
    "/api/v1/admin/tables/{table}/scan": TableScan,
    "/api/v1/admin/outbox": Outbox,
}

"""``orderflow tables``: look into the tables of a running platform through its admin API.

Any worker answers: it reads a key where the key lives and asks every worker for a scan.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlencode

import click
import orjson

from orderflow.auth.local import operator_header
from orderflow.cli_settings import settings_or_exit

# A scan waits up to 10 s for each worker before it answers without it.
REQUEST_TIMEOUT = 30.0

F = TypeVar("F", bound=Callable[..., Any])


class ApiError(click.ClickException):
    """Printed as ``error: <message>``; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


def _default_url() -> str:
    return f"http://127.0.0.1:{settings_or_exit().web_port}"


def _common_options(command: F) -> F:
    command = click.option(
        "--url",
        default=_default_url,
        show_default="http://127.0.0.1:$ORDERFLOW_WEB_PORT",
        help="The web URL of any worker.",
    )(command)
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the worker's JSON answer as it is."
    )(command)


def fetch(base_url: str, path: str, query: dict[str, Any] | None = None) -> tuple[bytes, Any]:
    """GET ``path`` from the worker at ``base_url``: the body and its decoded JSON."""
    url = base_url.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
    # An operator's command: a short-lived admin token signed with the configured secret.
    headers = {"Accept": "application/json", **operator_header(settings_or_exit())}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as error:
        try:
            raise ApiError(_problem_detail(url, error.code, error.read())) from None
        finally:
            error.close()
    except urllib.error.URLError as error:
        raise ApiError(_unreachable(base_url, error.reason)) from None
    except TimeoutError:
        raise ApiError(f"{base_url} did not answer within {REQUEST_TIMEOUT:g} s") from None
    except OSError as error:
        raise ApiError(f"cannot read the answer of {base_url}: {error}") from None
    try:
        return body, orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(f"the answer of {url} is not JSON") from None


def _problem_detail(url: str, status: int, body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        return str(document["detail"])
    return f"{url} answered HTTP {status}"


def _unreachable(base_url: str, reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return (
            f"no orderflow worker answers at {base_url} (connection refused); "
            "start the platform with `orderflow run`, or pass --url"
        )
    if isinstance(reason, TimeoutError):
        return f"{base_url} did not answer within {REQUEST_TIMEOUT:g} s"
    return f"cannot reach {base_url}: {reason}"


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()


def _table_path(table: str) -> str:
    return f"/api/v1/admin/tables/{quote(table, safe='')}"


@click.group("tables")
def tables() -> None:
    """Look into the platform's tables (any worker answers for the whole group)."""


@tables.command("list")
@_common_options
def list_tables(url: str, as_json: bool) -> None:
    """The tables, their partitions and changelog topics."""
    body, document = fetch(url, "/api/v1/admin/tables")
    if as_json:
        click.echo(body.decode())
        return
    rows = [("TABLE", "PARTITIONS", "CHANGELOG TOPIC", "DESCRIPTION")]
    rows += [
        (t["name"], str(t["partitions"]), t["changelog_topic"], t["help"])
        for t in document["tables"]
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]).rstrip())


@tables.command("get")
@click.argument("table")
@click.argument("key")
@_common_options
def get(table: str, key: str, url: str, as_json: bool) -> None:
    """The value of KEY in TABLE, read on the worker that owns it."""
    body, document = fetch(url, f"{_table_path(table)}/keys/{quote(key, safe='')}")
    if as_json:
        click.echo(body.decode())
        return
    click.echo(orjson.dumps(document["value"], option=orjson.OPT_INDENT_2).decode())


@tables.command("scan")
@click.argument("table")
@click.option("--prefix", default="", help="Only keys that start with this.")
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="The most keys to print.",
)
@_common_options
def scan(table: str, prefix: str, limit: int, url: str, as_json: bool) -> None:
    """The keys of TABLE (from every worker) in key order, each with its value."""
    query = {"prefix": prefix, "limit": limit}
    body, document = fetch(url, f"{_table_path(table)}/scan", query)
    if as_json:
        click.echo(body.decode())
        return
    for item in document["items"]:
        click.echo(f"{item['key']}  {_compact(item['value'])}")
    if not document["items"]:
        click.echo(f"no key of {table} starts with {prefix!r}", err=True)
    if document["truncated"]:
        click.echo(
            f"(the first {limit} keys; more match: raise --limit or narrow --prefix)", err=True
        )
    if not document["complete"]:
        click.echo("warning: partial answer, keys may be missing:", err=True)
        for worker in document["workers"]:
            if worker["error"]:
                click.echo(f"  {worker['url']} did not answer: {worker['error']}", err=True)
        if document.get("missing_partitions"):
            missing = ", ".join(str(p) for p in document["missing_partitions"])
            click.echo(f"  partitions nobody scanned: {missing}", err=True)

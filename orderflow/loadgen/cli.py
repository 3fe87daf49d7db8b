"""``orderflow loadgen``: one load window, or ``--find-max``; a JSON report on stdout."""

from __future__ import annotations

import asyncio
import math
import platform
import secrets
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from orderflow.cli_settings import settings_or_exit
from orderflow.errors import OrderflowError
from orderflow.loadgen.credentials import Credentials
from orderflow.loadgen.plan import Catalog, Mix, stock_per_sku
from orderflow.loadgen.runner import LoadGenerator, LoadOptions
from orderflow.loadgen.search import RateSearch
from orderflow.loadgen.watcher import ORDERS_EVENTS
from orderflow.settings import Settings

DEFAULT_MIX = "decline=0.05,out_of_stock=0.05,cancel=0.02"


def _mix(ctx: click.Context, param: click.Parameter, value: str) -> Mix:
    try:
        return Mix.parse(value)
    except OrderflowError as error:
        raise click.BadParameter(str(error)) from None


def _workers(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    urls = tuple(url.strip().rstrip("/") for item in value for url in item.split(","))
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not an http(s) URL")
    return tuple(filter(None, urls))


@click.command("loadgen")
@click.option(
    "--workers",
    "workers",
    multiple=True,
    callback=_workers,
    metavar="URL[,URL...]",
    help="Workers to send to, round-robin (default: this host's ORDERFLOW_WEB_PORT).",
)
@click.option(
    "--rate",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Orders per second, sent open-loop.",
)
@click.option(
    "--duration",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds of load.",
)
@click.option(
    "--lines",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Lines per order, each a different sku.",
)
@click.option(
    "--skus",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Skus of the run (made for it and stocked first).",
)
@click.option(
    "--mix",
    default=DEFAULT_MIX,
    show_default=True,
    callback=_mix,
    help="Shares of declined, out-of-stock and cancelled orders; the rest confirm.",
)
@click.option(
    "--follow",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to keep reading outcomes after the last order is due.",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--max-in-flight",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="Unanswered requests beyond which a due order is counted as not sent.",
)
@click.option("--http-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option(
    "--find-max",
    is_flag=True,
    help="Search for the highest rate whose p99 stays under --p99-bound-ms.",
)
@click.option("--p99-bound-ms", default=300.0, show_default=True, type=click.FloatRange(min=1))
@click.option(
    "--min-completion",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="find-max: share of the offered orders that must complete in the window.",
)
@click.option("--start-rate", default=20.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--max-rate", default=2000.0, show_default=True, type=click.FloatRange(min=1))
@click.option(
    "--resolution",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="find-max: stop when a held and a failed rate are this close.",
)
@click.option(
    "--window",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=2),
    help="find-max: seconds of load per trial.",
)
@click.option("--max-trials", default=10, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--settle",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="find-max: seconds of quiet between trials.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON report to this file.",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
def loadgen(
    workers: tuple[str, ...],
    rate: float,
    duration: float,
    lines: int,
    skus: int,
    mix: Mix,
    follow: float,
    seed: int,
    max_in_flight: int,
    http_timeout: float,
    find_max: bool,
    p99_bound_ms: float,
    min_completion: float,
    start_rate: float,
    max_rate: float,
    resolution: float,
    window: float,
    max_trials: int,
    settle: float,
    output: Path | None,
    quiet: bool,
) -> None:
    """Open-loop load against running workers; outcomes are read from orders.events.

    Stocks skus of its own first, sends --rate orders per second for --duration seconds, prints
    a progress line every second (stderr) and a JSON report (stdout): offered, accepted,
    completed per second, p50/p95/p99/max from 202 to outcome, HTTP errors, orders pending.

    \b
    orderflow loadgen --rate 80 --duration 30 --workers http://127.0.0.1:6066,http://127.0.0.1:6067
    orderflow loadgen --find-max --p99-bound-ms 300 --workers ...
    """
    settings = settings_or_exit()
    if lines > skus:
        raise click.BadParameter(f"--lines {lines} is more than --skus {skus}")
    options = LoadOptions(
        workers=workers or (settings.canonical_url,),
        lines=lines,
        mix=mix,
        follow=follow,
        seed=seed,
        max_in_flight=max_in_flight,
        http_timeout=http_timeout,
        progress=not quiet,
        credentials=Credentials.from_settings(settings),
    )
    search = (
        RateSearch(start_rate, max_rate, resolution, max_trials=max_trials) if find_max else None
    )
    orders = max_trials * math.ceil(max_rate * window) if search else math.ceil(rate * duration)
    catalog = Catalog.of(f"lg{secrets.token_hex(3)}", skus, stock_per_sku(orders, lines, skus))

    async def run() -> dict[str, Any]:
        async with LoadGenerator(
            options,
            bootstrap_servers=settings.bootstrap_servers,
            events_topic=settings.topic(ORDERS_EVENTS),
            echo=lambda line: click.echo(line, err=True),
        ) as generator:
            click.echo(f"stocking {skus} skus ({catalog.tag}-SKU-*)", err=True)
            await generator.stock(catalog)
            if search is not None:
                found = await generator.find_max(
                    search,
                    window=window,
                    p99_bound_ms=p99_bound_ms,
                    min_completion=min_completion,
                    settle=settle,
                )
                return {"find_max": found}
            return {"window": await generator.window(rate, duration)}

    try:
        result = asyncio.run(run())
    except (OrderflowError, OSError) as error:
        raise click.ClickException(str(error)) from None
    report = {**header(settings, options, catalog), **result}
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    click.echo(text)


def header(settings: Settings, options: LoadOptions, catalog: Catalog) -> dict[str, Any]:
    """What a report says about the run itself."""
    return {
        "command": " ".join(["orderflow", *sys.argv[1:]]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "events_topic": settings.topic(ORDERS_EVENTS),
        "tag": catalog.tag,
        "skus": catalog.count,
        "stock_per_sku": catalog.stock,
        "options": {
            **asdict(options),
            "mix": str(options.mix),
            "workers": list(options.workers),
            # Whether tokens were sent, never the key they were signed with.
            "credentials": "signed tokens" if options.credentials else "none",
        },
    }

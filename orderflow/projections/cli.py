"""``orderflow projections rebuild NAME`` and ``orderflow projections status``."""

from __future__ import annotations

import asyncio

import click
import orjson

from orderflow.cli_settings import settings_or_exit
from orderflow.projections.registry import PROJECTIONS


@click.group()
def projections() -> None:
    """The read side in Elasticsearch and MongoDB."""


@projections.command("rebuild")
@click.argument("name", type=click.Choice(list(PROJECTIONS)))
def projections_rebuild(name: str) -> None:
    """Replay NAME's source topic into a new index or collection and switch readers to it."""
    from orderflow.projections.rebuild import rebuild

    settings = settings_or_exit()
    try:
        report = asyncio.run(rebuild(settings, name, click.echo))
    except Exception as error:
        raise click.ClickException(f"the rebuild of {name} failed: {error}") from None
    click.echo(
        f"{name}: rebuilt into {report.target} in {report.seconds:.1f}s "
        f"({report.copied} documents written, {report.skipped} messages skipped)"
    )


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def projections_status(as_json: bool) -> None:
    """Each projection's live index or collection, its documents and its lag."""
    from orderflow.projections.rebuild import status

    settings = settings_or_exit()
    try:
        report = asyncio.run(status(settings))
    except Exception as error:
        raise click.ClickException(f"cannot read the projections' status: {error}") from None
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    for row in report:
        line = f"{row['projection']:<20} {row['store']:<14} {row.get('live', '?'):<32}"
        line += f" documents={row.get('documents', '?')} lag={row.get('lag', '?')}"
        if "error" in row:
            line += f"  ({row['error']})"
        click.echo(line)

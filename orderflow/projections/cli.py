"""``orderflow projections rebuild NAME``, ``verify [NAME] [--repair]`` and ``status``."""

from __future__ import annotations

import asyncio
import sys

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


@projections.command("verify")
@click.argument("names", nargs=-1, type=click.Choice(list(PROJECTIONS)))
@click.option("--repair", is_flag=True, help="Write the documents a store is behind on.")
def projections_verify(names: tuple[str, ...], repair: bool) -> None:
    """Compare each projection's store with its documents topic, document by document.

    Exits 1 if a store is behind (and --repair did not write it all)."""
    from orderflow.projections.rebuild import verify

    settings = settings_or_exit()
    behind = 0
    for name in names or tuple(PROJECTIONS):
        try:
            report = asyncio.run(verify(settings, name, repair=repair))
        except Exception as error:
            raise click.ClickException(f"cannot verify {name}: {error}") from None
        line = f"{name:<20} documents={report.documents} behind={report.behind}"
        if repair:
            line += f" repaired={report.repaired}"
        if report.examples:
            line += f"  (e.g. {', '.join(report.examples)})"
        click.echo(line)
        behind += report.behind - report.repaired
    if behind:
        sys.exit(1)


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

"""``orderflow schemas``: the JSON Schemas of the records on orderflow's topics."""

from __future__ import annotations

from pathlib import Path

import click

from orderflow.schemas.jsonschema import export


@click.group("schemas")
def schemas_group() -> None:
    """JSON Schemas of the commands and events on orderflow's topics."""


@schemas_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write one <Name>.v<version>.json per record type into DIRECTORY (created if missing)."""
    for path in export(directory):
        click.echo(str(path))

"""``orderflow db migrate`` and ``orderflow outbox status``."""

from __future__ import annotations

import asyncio

import asyncpg
import click
import orjson

from orderflow.cli_settings import settings_or_exit
from orderflow.db import CONNECTION_ERRORS, Database
from orderflow.db.migrate import migrate
from orderflow.settings import Settings


async def apply_migrations(settings: Settings) -> list[str]:
    """Apply the pending migrations to ORDERFLOW_DATABASE_URL; returns their names."""
    connection = await asyncpg.connect(settings.database_url, timeout=settings.database_timeout)
    try:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(connection)]
    finally:
        await connection.close()


@click.group()
def db() -> None:
    """The PostgreSQL schema of the intake and the outbox."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply the pending schema migrations (safe to run from several processes at once)."""
    settings = settings_or_exit()
    try:
        applied = asyncio.run(apply_migrations(settings))
    except CONNECTION_ERRORS as error:
        raise click.ClickException(f"cannot reach {settings.database_url}: {error}") from None
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")


@click.group()
def outbox() -> None:
    """The transactional outbox between the HTTP intake and Kafka."""


@outbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def outbox_status(as_json: bool) -> None:
    """Rows waiting to be published and the age of the oldest (the relay's lag)."""
    from orderflow.sinks.outbox_relay import outbox_lag

    settings = settings_or_exit()

    async def read() -> dict[str, float]:
        database = Database(settings)
        try:
            return await outbox_lag(database)
        finally:
            await database.close()

    try:
        lag = asyncio.run(read())
    except CONNECTION_ERRORS as error:
        raise click.ClickException(f"cannot reach {settings.database_url}: {error}") from None
    if as_json:
        click.echo(orjson.dumps(lag).decode())
    else:
        click.echo(f"pending rows: {lag['pending']:.0f}")
        click.echo(f"oldest pending: {lag['oldest_pending_seconds']:.1f}s")
        click.echo(f"set aside (topic missing): {lag['failed']:.0f}")


@outbox.command("retry-failed")
def outbox_retry_failed() -> None:
    """Put the rows set aside (their topic did not exist) back in line for the relays."""
    from orderflow.sinks.outbox_relay import retry_failed

    settings = settings_or_exit()

    async def retry() -> int:
        database = Database(settings)
        try:
            return await retry_failed(database)
        finally:
            await database.close()

    try:
        count = asyncio.run(retry())
    except CONNECTION_ERRORS as error:
        raise click.ClickException(f"cannot reach {settings.database_url}: {error}") from None
    click.echo(f"{count} row(s) back in line")

"""``orderflow dlq list|show|replay``: dead-letter topics, straight from Kafka."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import click
import orjson

from orderflow.cli_settings import settings_or_exit
from orderflow.resilience import dlq
from orderflow.resilience.dlq_store import DeadLetter, Selection, dead_letter_topics, read, replay


def _selection(
    error_type: str | None, key: str | None, since: datetime | None, until: datetime | None
) -> Selection:
    return Selection(error_type=error_type, key=key, since=since, until=until)


def _summary(letter: DeadLetter) -> str:
    return (
        f"{letter.partition}:{letter.offset}  key={letter.key!r}  "
        f"{letter.header(dlq.ERROR_TYPE)}: {letter.header(dlq.ERROR_MESSAGE)}  "
        f"attempts={letter.header(dlq.ATTEMPTS)}  from {letter.header(dlq.ORIGIN_TOPIC)}"
        f"[{letter.header(dlq.ORIGIN_PARTITION)}]@{letter.header(dlq.ORIGIN_OFFSET)}  "
        f"by {letter.header(dlq.HANDLER)} at {letter.header(dlq.LAST_FAILURE)}"
    )


def _print(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


_filters = [
    click.option("--error-type", help="Only records that failed with this error type."),
    click.option("--key", help="Only records with this key."),
    click.option("--since", type=click.DateTime(), help="Last failure at or after (ISO 8601)."),
    click.option("--until", type=click.DateTime(), help="Last failure at or before (ISO 8601)."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def filters(command: Any) -> Any:
    for option in reversed(_filters):
        command = option(command)
    return command


def _aware(moment: datetime | None) -> datetime | None:
    return moment.astimezone() if moment is not None else None


@click.group("dlq")
def dlq_group() -> None:
    """Dead-letter topics: what no handler could process, and why."""


@dlq_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dlq_list(as_json: bool) -> None:
    """Every dead-letter topic of this deployment and how many records it holds."""
    settings = settings_or_exit()
    topics = asyncio.run(dead_letter_topics(settings.bootstrap_servers, settings.topic_prefix))
    if as_json:
        _print(topics)
    elif not topics:
        click.echo("no dead-letter topics")
    for entry in topics if not as_json else ():
        click.echo(f"{entry['records']:>8}  {entry['topic']}")


@dlq_group.command("show")
@click.argument("topic")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@filters
def dlq_show(
    topic: str,
    limit: int,
    error_type: str | None,
    key: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """The records of a dead-letter topic with the story of each failure."""
    settings = settings_or_exit()
    selection = _selection(error_type, key, _aware(since), _aware(until))
    try:
        letters = asyncio.run(read(settings.bootstrap_servers, topic, selection, limit))
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _print([letter.to_json() for letter in letters])
        return
    for letter in letters:
        click.echo(_summary(letter))


@dlq_group.command("replay")
@click.argument("topic")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; send nothing.")
@filters
def dlq_replay(
    topic: str,
    dry_run: bool,
    error_type: str | None,
    key: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Send matching records back to their origin topic (safe to run twice)."""
    settings = settings_or_exit()
    selection = _selection(error_type, key, _aware(since), _aware(until))
    try:
        letters = asyncio.run(replay(settings.bootstrap_servers, topic, selection, dry_run=dry_run))
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _print({"dry_run": dry_run, "records": [letter.to_json() for letter in letters]})
        return
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"{verb} {len(letters)} record(s)")
    for letter in letters:
        click.echo("  " + _summary(letter))

"""Test harness: real services, started once per session, and isolation between runs.

Integration and e2e tests ask for a service through a fixture (``kafka``, ``postgres``,
``elasticsearch``, ``mongodb``). The first such request checks the service with
``deploy/local/infra.sh status`` and starts it if it is down; services this session started are
stopped at its end (set ORDERFLOW_KEEP_INFRA=1 to keep them for the next run). Services already
running are reused and left running. Every run gets its own ``run_id``, used as the prefix of
its topics, consumer groups, databases, indices and collections; its topics are deleted at the
end of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from orderflow.db.migrate import migrate

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "deploy" / "local" / "infra.sh"


def _infra(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INFRA), *args], check=check, text=True, stdout=subprocess.PIPE, timeout=1800
    )


class Infra:
    """Starts services on demand, once per session, and stops those it started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ready: dict[str, str] = {}

    def require(self, service: str) -> str:
        if service not in self.ready:
            if _infra("status", "--only", service, check=False).returncode != 0:
                _infra("up", "--only", service)
                self.started.append(service)
            self.ready[service] = _infra("url", service).stdout.strip()
        return self.ready[service]

    def stop_started(self) -> None:
        if self.started and os.environ.get("ORDERFLOW_KEEP_INFRA") != "1":
            _infra("down", "--only", ",".join(self.started), check=False)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    harness = Infra()
    yield harness
    harness.stop_started()


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per test session: the prefix of every topic, group, index and database it makes."""
    return f"t{int(time.time())}{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def kafka(infra: Infra, run_id: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The broker URL (kafka://host:port) of a running Kafka; the run's topics are deleted at
    the end of the session, or every run would leave its hundreds of partitions on the broker
    and slow each start of it down. A session with failures keeps them: what the records say
    is often what tells a lost message from a late one."""
    url = infra.require("kafka")
    yield url
    if request.session.testsfailed:
        warnings.warn(
            f"tests failed: this run's topics (named with {run_id}) are kept on {url}",
            stacklevel=1,
        )
        return
    asyncio.run(_delete_topics(url.removeprefix("kafka://"), run_id))


async def _delete_topics(bootstrap: str, run_id: str) -> None:
    """Every topic the run made: named with its id first, or, for Faust's repartition topics,
    after the agent's name."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    try:
        await admin.start()
        topics = sorted(name for name in await admin.list_topics() if run_id in name)
        for start in range(0, len(topics), 100):
            await admin.delete_topics(topics[start : start + 100], timeout_ms=60_000)
    except Exception as error:  # the tests are over: cleaning up must not fail them
        warnings.warn(f"could not delete this run's topics: {error!r}", stacklevel=1)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: str) -> str:
    """The broker as aiokafka's bootstrap_servers wants it (host:port)."""
    return kafka.removeprefix("kafka://")


@pytest.fixture(scope="session")
def postgres(infra: Infra) -> str:
    return infra.require("postgres")


@contextlib.contextmanager
def fresh_database(postgres: str, name: str) -> Iterator[str]:
    """A new database migrated to the current schema, dropped afterwards; yields its URL."""
    url = postgres.rsplit("/", 1)[0] + f"/{name}"

    async def create() -> None:
        admin = await asyncpg.connect(postgres)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        connection = await asyncpg.connect(url)
        try:
            await migrate(connection)
        finally:
            await connection.close()

    async def drop() -> None:
        admin = await asyncpg.connect(postgres)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="session")
def database_url(postgres: str, run_id: str) -> Iterator[str]:
    """A database of this run's own, migrated to the current schema."""
    with fresh_database(postgres, f"orderflow_{run_id}") as url:
        yield url


@pytest.fixture(scope="session")
def elasticsearch(infra: Infra) -> str:
    return infra.require("elasticsearch")


@pytest.fixture(scope="session")
def mongodb(infra: Infra, postgres: str) -> str:
    # FerretDB keeps its data in the local PostgreSQL: start (and later stop) that first.
    return infra.require("mongodb")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test carries exactly one of the unit / integration / e2e markers, from its folder.
    for item in items:
        kind = Path(str(item.fspath)).relative_to(REPO / "tests").parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))

"""A whole platform of its own for a benchmark: payment simulator and N workers on the running
local infrastructure, under a deployment name that no one else uses (its app id, topic prefix,
database, Elasticsearch indices and MongoDB database), removed again afterwards.

    with own_platform("bench-1a2b3c", workers=2, web_port=6166, gateway_port=7166) as live:
        live.worker_urls  # ["http://127.0.0.1:6166", "http://127.0.0.1:6167"]
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from motor.motor_asyncio import AsyncIOMotorClient

from orderflow import platform
from orderflow.db.migrate import migrate
from orderflow.settings import Settings


@dataclass
class Platform:
    name: str
    settings: Settings
    processes: list[platform.ManagedProcess]

    @property
    def workers(self) -> list[platform.ManagedProcess]:
        return [p for p in self.processes if p.name.startswith("worker-")]

    @property
    def worker_urls(self) -> list[str]:
        return [p.ready_url.removesuffix("/readyz") for p in self.workers]

    def pids(self) -> dict[str, int]:
        return {p.name: p.process.pid for p in self.processes if p.process is not None}


def settings_for(name: str, *, web_port: int, gateway_port: int, partitions: int) -> Settings:
    base = Settings.from_env()
    database = base.database_url.rsplit("/", 1)[0] + f"/{name.replace('-', '_')}"
    mongodb = base.mongodb_url.rsplit("/", 1)[0] + f"/{name.replace('-', '_')}"
    return dataclasses.replace(
        base,
        app_id=name,
        topic_prefix=f"{name}.",
        topic_partitions=partitions,
        web_port=web_port,
        database_url=database,
        mongodb_url=mongodb,
        payment_gateway_url=f"http://127.0.0.1:{gateway_port}",
        # Its own key: the load generator signs the tokens it sends with it.
        jwt_secret=base.jwt_secret or secrets.token_hex(32),
    )


@contextlib.contextmanager
def own_platform(
    name: str,
    *,
    workers: int,
    web_port: int,
    gateway_port: int,
    var_dir: Path,
    partitions: int = 8,
) -> Iterator[Platform]:
    settings = settings_for(
        name, web_port=web_port, gateway_port=gateway_port, partitions=partitions
    )
    admin_url = Settings.from_env().database_url
    asyncio.run(_create_database(admin_url, settings.database_url))
    processes = [
        platform.payment_simulator_process(settings, var_dir),
        *platform.worker_processes(settings, workers, var_dir),
    ]
    try:
        for process in processes:
            process.start()
        platform.wait_ready(processes, timeout=300)
        yield Platform(name, settings, processes)
    finally:
        for process in processes:
            process.stop()
        asyncio.run(_remove(name, settings, admin_url))


async def _create_database(admin_url: str, url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
    finally:
        await connection.close()


async def _remove(name: str, settings: Settings, admin_url: str) -> None:
    """Everything the deployment made: topics, database, indices, MongoDB database."""
    kafka = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=60_000
    )
    await kafka.start()
    try:
        topics = sorted(topic for topic in await kafka.list_topics() if name in topic)
        for start in range(0, len(topics), 100):
            await kafka.delete_topics(topics[start : start + 100], timeout_ms=60_000)
    finally:
        await kafka.close()
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(
            f'DROP DATABASE IF EXISTS "{settings.database_url.rsplit("/", 1)[1]}" WITH (FORCE)'
        )
    finally:
        await admin.close()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        listing = f"{settings.elasticsearch_url}/_cat/indices/{name}-*?format=json&h=index"
        async with http.get(listing) as response:
            indices = [row["index"] for row in await response.json()]
        if indices:  # by name: the cluster refuses wildcard deletes
            async with http.delete(f"{settings.elasticsearch_url}/{','.join(indices)}"):
                pass
    mongo: AsyncIOMotorClient[dict[str, object]] = AsyncIOMotorClient(settings.mongodb_url)
    try:
        await mongo.drop_database(settings.mongodb_url.rsplit("/", 1)[1])
    finally:
        mongo.close()

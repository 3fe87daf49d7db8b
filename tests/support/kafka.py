"""Kafka helpers shared by the tests that make their own topics."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topic(bootstrap: str, name: str, partitions: int, within: float = 60.0) -> None:
    """Create ``name`` and return once the broker lists it.

    A broker that has just started may answer a creation with an error code (aiokafka's
    ``create_topics`` returns it instead of raising) or list the new topic a moment late, so
    this creates until the topic is listed.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(within):
            while name not in await admin.list_topics():
                await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
                await asyncio.sleep(0.5)
    finally:
        await admin.close()

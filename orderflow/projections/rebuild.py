"""Rebuild a projection with no downtime for readers, verify it, and report every projection's
lag.

A rebuild copies the whole documents topic (compacted: the latest document of every key) into
a new index or collection generation, then moves the alias or pointer to it in one step, so
readers see the old generation, complete, until they see the new one, complete. The live sinks
keep writing through the alias or pointer all along; what they wrote to the old generation
between the end of the copy and the switch is copied again after the switch (the writes are
versioned, so copying twice is harmless), then the old generation is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orderflow.projections.mongodb import POINTER_TTL
from orderflow.projections.read_side import ReadSide
from orderflow.projections.registry import PROJECTIONS, Projection, projection
from orderflow.projections.sink import BATCH_SIZE, NotADocument, latest_per_id, parse
from orderflow.projections.stores import Document, Store
from orderflow.settings import Settings

DROP_GRACE = 5.0  # seconds readers may still be inside the old generation after a switch


@dataclass
class RebuildReport:
    projection: str
    target: str
    previous: str
    copied: int
    skipped: int
    seconds: float


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    described = await admin.describe_topics([topic])
    numbers = [p["partition"] for d in described if not d["error_code"] for p in d["partitions"]]
    if not numbers:
        raise LookupError(f"topic {topic} does not exist (has a worker ever started?)")
    return [TopicPartition(topic, n) for n in sorted(numbers)]


async def _topic_readers(settings: Settings) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
    """A started consumer of committed records (no group, keys as text) and admin client."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        key_deserializer=lambda key: key.decode() if key is not None else None,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    await admin.start()
    return consumer, admin


async def _copy_until(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    store: Store,
    target: str,
    projection: Projection,
) -> tuple[int, int]:
    """Copy from the consumer's positions up to ``ends``; returns (copied, skipped)."""
    copied = skipped = 0
    remaining = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=BATCH_SIZE)
        documents: list[Document] = []
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    continue
                try:
                    documents.append(parse(record.key, record.value, projection))
                except NotADocument:
                    skipped += 1  # the live sink dead-letters it; a rebuild passes it by
        if documents:
            latest = latest_per_id(documents)
            await store.write(latest, target)
            copied += len(latest)
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    return copied, skipped


async def rebuild(
    settings: Settings, name: str, say: Callable[[str], None] = lambda _: None
) -> RebuildReport:
    wanted = projection(name)
    loop = asyncio.get_running_loop()
    started = loop.time()
    read_side = ReadSide(settings)
    store = read_side.store(wanted)
    topic = settings.topic(wanted.source)
    consumer, admin = await _topic_readers(settings)
    try:
        await store.prepare()
        consumer_partitions = await _partitions(admin, topic)
        consumer.assign(consumer_partitions)
        await consumer.seek_to_beginning(*consumer_partitions)
        target = await store.new_generation()
        say(f"{name}: copying {topic} into {target}")
        ends = await consumer.end_offsets(consumer_partitions)
        copied, skipped = await _copy_until(consumer, ends, store, target, wanted)
        previous = await store.switch(target)
        say(f"{name}: {target} is live ({copied} documents); catching up")
        await asyncio.sleep(POINTER_TTL * 2)  # every writer now follows the new name
        ends = await consumer.end_offsets(consumer_partitions)
        more, more_skipped = await _copy_until(consumer, ends, store, target, wanted)
        await asyncio.sleep(DROP_GRACE)
        await store.drop(previous)
        say(f"{name}: dropped {previous}")
        return RebuildReport(
            name, target, previous, copied + more, skipped + more_skipped, loop.time() - started
        )
    finally:
        await admin.close()
        await consumer.stop()
        await read_side.close()


async def status(settings: Settings) -> list[dict[str, Any]]:
    """Each projection: its live index or collection, its documents, and the lag of the
    workers' consumer group on its source topic (shared by the projections of one topic)."""
    read_side = ReadSide(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id)
        report = []
        for name, each in PROJECTIONS.items():
            topic = settings.topic(each.source)
            row: dict[str, Any] = {"projection": name, "store": each.store.value, "source": topic}
            try:
                partitions = await _partitions(admin, topic)
                ends = await consumer.end_offsets(partitions)
                row["lag"] = sum(
                    end - (committed[tp].offset if tp in committed else 0)
                    for tp, end in ends.items()
                )
                row["messages"] = sum(ends.values())
            except LookupError as error:
                row["error"] = str(error)
            store = read_side.store(each)
            try:
                row["live"] = await store.live()
                row["documents"] = await store.count()
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {error}"
            report.append(row)
        return report
    finally:
        await admin.close()
        await consumer.stop()
        await read_side.close()


@dataclass
class VerifyReport:
    projection: str
    documents: int  # distinct documents on the documents topic
    behind: int  # of them, missing from the store or held at an older version
    repaired: int  # written again (with --repair)
    examples: list[str]  # a few of the ids behind


async def verify(
    settings: Settings, name: str, *, repair: bool = False, examples: int = 5
) -> VerifyReport:
    """Compare every document of ``name``'s documents topic (the latest of each key) with the
    version its store holds, by id, a batch at a time; with ``repair``, write what is behind
    (versioned: a store that has moved on meanwhile keeps its newer version)."""
    wanted = projection(name)
    read_side = ReadSide(settings)
    store = read_side.store(wanted)
    consumer, admin = await _topic_readers(settings)
    report = VerifyReport(name, 0, 0, 0, [])
    try:
        partitions = await _partitions(admin, settings.topic(wanted.source))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:  # one partition at a time: its latest documents fit in memory
            latest: dict[str, Document] = {}
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=BATCH_SIZE)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        continue
                    try:
                        document = parse(record.key, record.value, wanted)
                    except NotADocument:
                        continue  # the sink dead-letters it
                    kept = latest.get(document.id)
                    if kept is None or document.version > kept.version:
                        latest[document.id] = document
            documents = list(latest.values())
            report.documents += len(documents)
            for start in range(0, len(documents), BATCH_SIZE):
                page = documents[start : start + BATCH_SIZE]
                held = await store.versions([d.id for d in page])
                behind = [d for d in page if held.get(d.id, -1) < d.version]
                report.behind += len(behind)
                room = examples - len(report.examples)
                report.examples += [d.id for d in behind[: max(room, 0)]]
                if repair and behind:
                    rejections = await store.write(behind)
                    report.repaired += len(behind) - len(rejections)
        return report
    finally:
        await admin.close()
        await consumer.stop()
        await read_side.close()

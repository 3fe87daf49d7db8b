"""Reading and replaying dead-letter topics (``orderflow dlq`` and the admin API).

A DLQ is read from its beginning to its end offsets with a consumer of no group, so listing and
showing change nothing. Replay produces the original key, value and headers (without the
``dlq.*`` ones, plus ``dlq.replayed_from``) back to the origin topic; consumers drop repeats by
event id, so replaying the same records twice is safe.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orderflow.resilience import dlq


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def origin_topic(self) -> str | None:
        return self.header(dlq.ORIGIN_TOPIC)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "key": _text(self.key),
            "value": _text(self.value),
            "headers": {k: v.decode(errors="replace") for k, v in self.headers},
        }


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters to show or replay; every criterion given must match."""

    error_type: str | None = None
    key: str | None = None
    since: datetime | None = None  # by the last failure time
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.error_type and letter.header(dlq.ERROR_TYPE) != self.error_type:
            return False
        if self.key is not None and _text(letter.key) != self.key:
            return False
        if self.since or self.until:
            failed = letter.header(dlq.LAST_FAILURE)
            if failed is None:
                return False
            at = datetime.fromisoformat(failed)
            if self.since and at < self.since:
                return False
            if self.until and at > self.until:
                return False
        return True


async def _partitions(bootstrap: str, topics: list[str]) -> dict[str, list[TopicPartition]]:
    """The partitions of each existing topic among ``topics`` (absent ones are left out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {
        entry["topic"]: [
            TopicPartition(entry["topic"], p["partition"]) for p in entry["partitions"]
        ]
        for entry in described
        if entry["error_code"] == 0
    }


async def dead_letter_topics(bootstrap: str, marker: str) -> list[dict[str, Any]]:
    """Every DLQ whose name contains ``marker`` (the deployment's topic prefix; '' for all),
    with its record count. Re-keying topics carry their source topic's name, so they match."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        names = sorted(t for t in await consumer.topics() if t.endswith(dlq.SUFFIX) and marker in t)
        all_partitions = await _partitions(bootstrap, names) if names else {}
        result = []
        for name in names:
            partitions = all_partitions.get(name, [])
            if not partitions:
                result.append({"topic": name, "records": 0})
                continue
            start = await consumer.beginning_offsets(partitions)
            end = await consumer.end_offsets(partitions)
            result.append({"topic": name, "records": sum(end[p] - start[p] for p in partitions)})
        return result
    finally:
        await consumer.stop()


async def read(
    bootstrap: str, topic: str, selection: Selection, limit: int | None = None
) -> list[DeadLetter]:
    """The matching records of ``topic``, oldest first per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = (await _partitions(bootstrap, [topic])).get(topic, [])
        if not partitions:
            raise LookupError(f"no topic {topic}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[DeadLetter] = []
        remaining = {p for p in partitions if end[p] > 0}
        while remaining and (limit is None or len(found) < limit):
            for records in (await consumer.getmany(*remaining, timeout_ms=1000)).values():
                for r in records:
                    letter = DeadLetter(
                        r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                        tuple(r.headers or ()),
                    )  # fmt: skip
                    if selection.matches(letter):
                        found.append(letter)
            remaining = {p for p in remaining if await consumer.position(p) < end[p]}
        return found[:limit] if limit is not None else found
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str, topic: str, selection: Selection, *, dry_run: bool
) -> list[DeadLetter]:
    """Send the matching records back to their origin topics; returns them."""
    letters = [letter for letter in await read(bootstrap, topic, selection) if letter.origin_topic]
    if dry_run or not letters:
        return letters
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            origin = letter.origin_topic
            assert origin is not None
            headers = [(k, v) for k, v in letter.headers if not k.startswith(dlq.PREFIX)]
            source = f"{letter.topic}:{letter.partition}:{letter.offset}".encode()
            headers.append((dlq.REPLAYED_FROM, source))
            await producer.send(origin, letter.value, key=letter.key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    return letters

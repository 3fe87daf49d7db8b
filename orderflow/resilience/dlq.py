"""Dead-letter topics: ``<topic>.dlq`` keeps a message no handler could process.

The original key and value bytes are kept untouched (and the original headers), and headers
tell the whole story: the error's type and message, the attempts, the first and last failure
times, the origin topic, partition and offset, and the handler's name. ``orderflow dlq``
lists, shows and replays them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faust.types import AppT, TopicT

from orderflow import topics
from orderflow.resilience.retry import FailedAttempt, retry
from orderflow.runtime import Runtime

log = logging.getLogger(__name__)

SUFFIX = ".dlq"
PREFIX = "dlq."

ERROR_TYPE = PREFIX + "error.type"
ERROR_MESSAGE = PREFIX + "error.message"
ATTEMPTS = PREFIX + "attempts"
FIRST_FAILURE = PREFIX + "first_failure_at"
LAST_FAILURE = PREFIX + "last_failure_at"
ORIGIN_TOPIC = PREFIX + "origin.topic"
ORIGIN_PARTITION = PREFIX + "origin.partition"
ORIGIN_OFFSET = PREFIX + "origin.offset"
HANDLER = PREFIX + "handler"
REPLAYED_FROM = PREFIX + "replayed_from"

MAX_ERROR_MESSAGE = 2000


def dlq_name(topic: str) -> str:
    return topic + SUFFIX


# Faust names the topic a stream is re-keyed through (group_by) after the agent, which is
# named after its module: "<orderflow.agents...>-<source topic>-<name>-repartition".
AGENTS = "orderflow.agents."
REPARTITION = "-repartition"


def is_dead_letter_topic(name: str, topic_prefix: str) -> bool:
    """Whether ``name`` is a dead-letter topic of the deployment whose topics are named with
    ``topic_prefix``: the DLQ twin of one of its topics, or of a re-keying topic an agent of
    it reads. No other topic (offsets, changelogs, another deployment's) is one."""
    if not name.endswith(SUFFIX):
        return False
    origin = name.removesuffix(SUFFIX)
    own = [topic_prefix + topic for topic in topics.NAMES]
    if origin in own:
        return True
    return (
        origin.startswith(AGENTS)
        and origin.endswith(REPARTITION)
        and any(f"-{topic}-" in origin for topic in own)
    )


@dataclass(frozen=True, slots=True)
class Failure:
    error: BaseException
    attempts: int
    first_failure_at: float
    last_failure_at: float
    handler: str


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def failure_headers(topic: str, partition: int, offset: int, failure: Failure) -> dict[str, bytes]:
    message = str(failure.error) or repr(failure.error)
    return {
        ERROR_TYPE: type(failure.error).__name__.encode(),
        ERROR_MESSAGE: message[:MAX_ERROR_MESSAGE].encode(errors="replace"),
        ATTEMPTS: str(failure.attempts).encode(),
        FIRST_FAILURE: _iso(failure.first_failure_at).encode(),
        LAST_FAILURE: _iso(failure.last_failure_at).encode(),
        ORIGIN_TOPIC: topic.encode(),
        ORIGIN_PARTITION: str(partition).encode(),
        ORIGIN_OFFSET: str(offset).encode(),
        HANDLER: failure.handler.encode(),
    }


def dead_letter_topic(app: AppT, origin: str, partitions: int) -> TopicT:
    """The DLQ twin of ``origin``, declared by the app (raw bytes in, raw bytes out)."""
    return app.topic(
        dlq_name(origin),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=True,
    )


async def dead_letter(app: Runtime, message: Any, failure: Failure) -> None:
    """Send the original bytes of ``message`` (a faust Message) to its topic's DLQ twin.

    It returns only once the broker has acknowledged the record, retrying with backoff for as
    long as that takes: the caller acknowledges the message next, so giving up here would lose
    it. The partition waits meanwhile (back-pressure), and each failed send is logged.
    """

    def retrying(failed: FailedAttempt) -> None:
        log.error(
            "dead-letter topic of %s refused %s[%s]@%s (attempt %d), retrying: %r",
            message.topic,
            message.topic,
            message.partition,
            message.offset,
            failed.attempts,
            failed.error,
        )

    # Every error is retried, forever: there is no one to give the message up to.
    await retry(
        lambda: _send(app, message, failure),
        app.settings.retry_policy,
        transient=_always,
        forever=True,
        on_retry=retrying,
    )


def _always(error: BaseException) -> bool:
    return True


async def _send(app: Runtime, message: Any, failure: Failure) -> None:
    topic = app.dead_letter_topic(message.topic)
    await topic.maybe_declare()
    original: Mapping[str, Any] = dict(message.headers or {})
    headers = {
        **{k: v for k, v in original.items() if not k.startswith(PREFIX)},
        **failure_headers(message.topic, message.partition, message.offset, failure),
    }
    pending = await topic.send(key=message.key, value=message.value, headers=headers)
    await pending


def now() -> float:
    return time.time()

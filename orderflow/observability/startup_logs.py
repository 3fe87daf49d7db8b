"""Quieter start-up: the errors aiokafka logs while a fresh deployment's topics do not exist yet.

A worker's first start on a new cluster (or with a new topic prefix) asks for the metadata of
topics it has yet to create, and for a group coordinator before Kafka has created its
``__consumer_offsets`` topic. aiokafka logs both at ERROR ("Topic ... not found in cluster
metadata", "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
and retries, and both go away within seconds. :class:`StartupNoise` lowers exactly these
records to INFO, only on the two loggers that emit them, and only until the worker has
recovered its tables once (or :data:`LIMIT` seconds have passed): after that the same
messages mean a topic was deleted or the coordinator is gone, and stay errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiokafka.errors import GroupCoordinatorNotAvailableError

# The loggers that emit the messages (aiokafka's module loggers).
CLUSTER = "aiokafka.cluster"
COORDINATOR = "aiokafka.consumer.group_coordinator"
# Start-up ends at the first completed recovery, and at the latest after this many seconds.
LIMIT = 300.0

_TOPIC_NOT_FOUND = "Topic %s not found in cluster metadata"
_COORDINATOR_FAILED = "Group Coordinator Request failed: %s"


class StartupNoise(logging.Filter):
    """Lowers the start-up errors above to ``level`` while ``active``."""

    def __init__(
        self,
        level: int = logging.INFO,
        limit: float = LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.level = level
        self.clock = clock
        self.deadline = clock() + limit
        self.ended = False

    @property
    def active(self) -> bool:
        return not self.ended and self.clock() < self.deadline

    def end(self) -> None:
        self.ended = True

    @staticmethod
    def expected(record: logging.LogRecord) -> bool:
        """One of the messages a fresh start is expected to log."""
        if record.name == CLUSTER:
            return record.msg == _TOPIC_NOT_FOUND
        if record.name == COORDINATOR and record.msg == _COORDINATOR_FAILED:
            args = record.args if isinstance(record.args, tuple) else ()
            return bool(args) and isinstance(args[0], GroupCoordinatorNotAvailableError)
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= self.level or not self.active or not self.expected(record):
            return True
        record.levelno = self.level
        record.levelname = logging.getLevelName(self.level)
        # Dropped where the process logs nothing at the lower level (ORDERFLOW_LOG_LEVEL).
        return logging.getLogger(record.name).isEnabledFor(self.level)


def install(noise: StartupNoise) -> None:
    for name in (CLUSTER, COORDINATOR):
        logging.getLogger(name).addFilter(noise)


def remove(noise: StartupNoise) -> None:
    noise.end()
    for name in (CLUSTER, COORDINATOR):
        logging.getLogger(name).removeFilter(noise)

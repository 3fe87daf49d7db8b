"""Ending a worker that can no longer keep its promise, so that it is started again.

Used where going on could commit an offset whose effect is not durable (a sink that failed, a
produced record Kafka refused). The process ends at once, committing nothing more; its
supervisor (Kubernetes, ``orderflow run``) starts it again, and its partitions are read again
from their committed offsets, which every handler tolerates (they are idempotent).
"""

from __future__ import annotations

import logging
import os
from typing import NoReturn

log = logging.getLogger(__name__)

ENDED_TO_READ_AGAIN = 71  # the exit status


def end_worker(reason: str) -> NoReturn:
    log.critical("%s; ending the worker so that its partitions are read again", reason)
    logging.shutdown()
    os._exit(ENDED_TO_READ_AGAIN)

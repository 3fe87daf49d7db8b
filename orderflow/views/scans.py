"""Scanning a table: the keys one worker holds, and the merge of every worker's answer.

Plain functions with no app, so that the rules (key order, the limit, when an answer is
partial) are tested without a worker; orderflow.views.admin serves them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from orderflow.views.problems import Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_limit(raw: str | None) -> int:
    """The ``limit`` query parameter: DEFAULT_LIMIT if absent, else an integer 1..MAX_LIMIT."""
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def select(
    items: Iterable[tuple[str, bytes]], prefix: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The first ``limit`` stored items whose key starts with ``prefix``, in key order, with
    their JSON values decoded; and whether more keys matched.

    Holds at most ``limit + 1`` items at a time, however many the store has.
    """
    matching = ((key, raw) for key, raw in items if key.startswith(prefix))
    first = heapq.nsmallest(limit + 1, matching, key=itemgetter(0))
    selected = [{"key": key, "value": orjson.loads(raw)} for key, raw in first[:limit]]
    return selected, len(first) > limit


@dataclass(frozen=True)
class WorkerScan:
    """One worker's answer to a scan, or why there is none (``error``)."""

    url: str
    items: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    partitions: list[int] = field(default_factory=list)  # the partitions it scanned
    error: str | None = None


def merge(scans: Sequence[WorkerScan], limit: int, partitions: int) -> dict[str, Any]:
    """Every worker's items in key order, cut at ``limit``.

    Each worker answered with its own first ``limit`` keys, so the first ``limit`` of them all
    are exact. The answer is complete only if the workers that answered scanned every one of
    the table's ``partitions``.
    """
    everything = sorted((item for scan in scans for item in scan.items), key=itemgetter("key"))
    scanned = {partition for scan in scans if scan.error is None for partition in scan.partitions}
    missing = sorted(set(range(partitions)) - scanned)
    return {
        "items": everything[:limit],
        "truncated": len(everything) > limit or any(scan.truncated for scan in scans),
        "complete": not missing and all(scan.error is None for scan in scans),
        "missing_partitions": missing,
        "workers": [
            {"url": scan.url, "items": len(scan.items), "error": scan.error} for scan in scans
        ],
    }

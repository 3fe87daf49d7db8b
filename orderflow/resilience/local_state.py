"""Local table state is kept across restarts only after a clean stop.

A worker writes a table record to its local RocksDB store at once and to the table's changelog
a moment later, when the producer's batch is acknowledged. A worker killed in between (kill -9,
out of memory, a lost node) leaves records in its store that Kafka never got. Faust rebuilds a
restarted worker's tables by reading the changelog from the last acknowledged offset onwards,
on top of the local store, so those records would stay: the redelivered commands would find
their effects already applied and would not write them again, and the next worker to own the
partition, rebuilding from the changelog alone, would not have them.

So a worker that stops cleanly (offsets committed, and every write acknowledged, which
orderflow.resilience.producer_buffer counts) leaves a mark in its data directory, and a worker
that starts without one discards its local tables and rebuilds them from the changelogs, which
hold a prefix of every partition's writes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

CLEAN_STOP_MARK = "clean-stop"


def claim(data_dir: Path, table_dir: Path) -> bool:
    """Call before any table opens. Keeps the local tables if the last run stopped cleanly,
    discards them otherwise; returns True when they were discarded. Either way the mark is
    removed, so that a run that does not stop cleanly leaves none."""
    mark = data_dir / CLEAN_STOP_MARK
    if mark.exists():
        mark.unlink()
        return False
    if not table_dir.exists() or not any(table_dir.iterdir()):
        return False
    log.warning(
        "the last run of this worker did not stop cleanly: its local tables may hold writes "
        "that never reached Kafka; discarding %s and rebuilding the tables from the changelogs",
        table_dir,
    )
    shutil.rmtree(table_dir)
    return True


def mark_clean_stop(data_dir: Path) -> None:
    """Call once the worker has stopped: every table write has been acknowledged."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / CLEAN_STOP_MARK).write_text("the tables in this directory match their changelogs\n")

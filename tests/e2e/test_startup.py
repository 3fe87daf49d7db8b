"""Workers started together on a new deployment's topics.

Each worker that joins makes the group rebalance while the others are still recovering their
tables, so Faust's recovery runs into new assignments while it builds the changelog offsets.
A partition assigned meanwhile reached the Kafka client with no offset and crashed the worker
(``ValueError: Offset must be a positive integer``); see orderflow.resilience.seeks.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess, platform_workers

ROUNDS = 3
WORKERS = 3
SETTLE_SECONDS = 10.0  # after every worker is ready: late rebalances and their recoveries


def _failures(workers: list[WorkerProcess]) -> list[str]:
    failures = []
    for worker in workers:
        assert worker.process is not None
        status = worker.process.poll()
        if status is not None:
            failures.append(f"{worker.name} exited with {status}:\n{worker.log_tail()}")
            continue
        log = worker.log_path.read_text(errors="replace")
        for symptom in ("Offset must be a positive integer", "Crashed reason"):
            if symptom in log:
                failures.append(f"{worker.name} logged {symptom!r}:\n{worker.log_tail()}")
    return failures


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_workers_started_together_on_new_topics_all_recover_and_stay_up(
    kafka_bootstrap: str, run_id: str, tmp_path: Path, round_: int
) -> None:
    workers = platform_workers(
        WORKERS,
        tmp_path,
        name=f"{run_id}-start{round_}",
        kafka=kafka_bootstrap,
        partitions=4,
        session_timeout="6",
    )
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_ready()
        time.sleep(SETTLE_SECONDS)
        assert not _failures(workers), "\n\n".join(_failures(workers))
        # Every worker still answers, after the group settled.
        for worker in workers:
            worker.wait_ready(timeout=60)
    finally:
        for worker in workers:
            worker.stop()

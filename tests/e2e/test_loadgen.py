"""`orderflow loadgen` against two real workers: every order it sends reaches the outcome its
kind calls for, read from orders.events, and the report says so."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support import auth
from tests.support.workers import PaymentSimulator, WorkerProcess, platform_workers, running


@pytest.fixture
def workers(
    kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path
) -> Iterator[list[WorkerProcess]]:
    with PaymentSimulator(tmp_path / "payment-sim.log") as simulator:
        processes = platform_workers(
            2,
            tmp_path,
            name=f"{run_id}-loadgen",
            kafka=kafka_bootstrap,
            partitions=4,
            database_url=database_url,
            gateway=simulator.url,
        )
        with running(processes):
            yield processes


def test_loadgen_follows_every_order_to_its_outcome(
    workers: list[WorkerProcess], kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    env = {
        **os.environ,
        "ORDERFLOW_BROKER_URL": f"kafka://{kafka_bootstrap}",
        "ORDERFLOW_TOPIC_PREFIX": f"{run_id}-loadgen.",
        # The workers' key: loadgen signs an admin's token and each customer's own with it.
        "ORDERFLOW_JWT_SECRET": auth.TEST_JWT_SECRET,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "orderflow.cli", "loadgen",
         "--workers", ",".join(worker.url for worker in workers),
         "--rate", "4", "--duration", "5", "--skus", "4", "--lines", "2", "--follow", "60",
         "--mix", "decline=0.25,out_of_stock=0.25,cancel=0.25",
         "--output", str(report_path)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "completed" in completed.stderr  # the progress line
    window = orjson.loads(report_path.read_bytes())["window"]
    assert window["offered"] == 20
    assert window["accepted"] == 20
    assert window["http_errors"] == {}
    assert window["pending"] == 0
    assert window["completed"] == 20
    assert window["outcomes"] == {
        "confirmed": 5,
        "rejected:payment_declined": 5,
        "rejected:out_of_stock": 5,
        "cancelled": 5,
    }
    assert window["unexpected_outcomes"] == {}
    assert window["cancel_errors"] == {}
    assert window["latency_ms"]["count"] == 20
    assert window["latency_ms"]["p99_ms"] is not None

"""A worker is killed with SIGKILL mid-stream, and restarts with its local RocksDB data wiped
or left as the kill left it (which the worker itself must then discard: it may hold writes the
changelog never got, see orderflow.resilience.local_state).

After restart its table must be rebuilt from the changelog topic exactly as it was, and
processing must resume from the committed offsets with no event counted twice or lost. A
graceful stop leaves the local tables marked as matching their changelogs.
(A broker that reports a high watermark below its last offset makes Faust recover stale
values; this is the test that catches that class of bug.)
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orderflow.resilience import local_state
from orderflow.views.health import STALLED_EXIT_STATUS
from tests.support.kafka import create_topic
from tests.support.workers import WorkerProcess, free_port

PARTITIONS = 4
KEYS = 40
PHASE_ONE = 30_000  # enough that the worker is still busy when it is killed
PHASE_TWO = 4_000


def key_of(i: int) -> str:
    return f"key-{i % KEYS:02d}"


def expected_counts(total: int) -> dict[str, dict[str, int]]:
    per_key = Counter(key_of(i) for i in range(total))
    return {key: {"count": n, "last_seq": n - 1} for key, n in per_key.items()}


async def produce(bootstrap: str, topic: str, start: int, stop: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        batch = [
            await producer.send(topic, str(i // KEYS).encode(), key=key_of(i).encode())
            for i in range(start, stop)
        ]
        await producer.flush()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


class WorkerExited(Exception):
    def __init__(self, worker: WorkerProcess, status: int) -> None:
        super().__init__(f"{worker.name} exited with status {status}:\n{worker.log_tail(120)}")
        self.status = status


async def table_snapshot(session: aiohttp.ClientSession, worker: WorkerProcess) -> dict[str, Any]:
    assert worker.process is not None
    try:
        async with session.get(f"{worker.url}/counts") as response:
            response.raise_for_status()
            snapshot: dict[str, Any] = await response.json()
            return snapshot
    except aiohttp.ClientError as error:
        status = await asyncio.to_thread(_exit_status, worker)
        if status is not None:
            raise WorkerExited(worker, status) from error
        raise AssertionError(
            f"{worker.name} did not answer: {error}\n{worker.log_tail()}"
        ) from error


def _exit_status(worker: WorkerProcess, within: float = 5.0) -> int | None:
    """The worker's exit status if it exits within ``within`` seconds (a refused connection can
    come a moment before the process is gone)."""
    assert worker.process is not None
    try:
        return worker.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return None


async def start_ready(worker: WorkerProcess, attempts: int = 3) -> int:
    """Start the worker and wait until it is ready, starting it again when the stall watchdog
    ends it first (as its supervisor would); returns how many such restarts it took."""
    for restarts in range(attempts):
        worker.start()
        try:
            await asyncio.to_thread(worker.wait_ready)
            return restarts
        except AssertionError:
            assert worker.process is not None
            if worker.process.poll() != STALLED_EXIT_STATUS:
                raise
    raise AssertionError(f"{worker.name} stalled {attempts} times in a row:\n{worker.log_tail()}")


async def wait_for_counts(
    session: aiohttp.ClientSession,
    worker: WorkerProcess,
    expected: dict[str, dict[str, int]],
    within: float = 240.0,
) -> int:
    """Wait until the table holds ``expected``; returns how often the stall watchdog ended the
    worker meanwhile (it is started again, as its supervisor would; any other exit fails)."""
    deadline = time.monotonic() + within
    snapshot: dict[str, Any] = {}
    restarts = 0
    while time.monotonic() < deadline:
        try:
            snapshot = await table_snapshot(session, worker)
        except WorkerExited as exited:
            if exited.status != STALLED_EXIT_STATUS:
                raise
            restarts += 1 + await start_ready(worker)
            continue
        if snapshot == expected:
            return restarts
        if any(snapshot.get(k, {}).get("count", 0) > v["count"] for k, v in expected.items()):
            break  # counted twice: waiting longer cannot fix it
        await asyncio.sleep(0.25)
    wrong = {k: (snapshot.get(k), v) for k, v in expected.items() if snapshot.get(k) != v}
    raise AssertionError(
        f"table differs from what was sent for {len(wrong)} keys (got, expected): "
        f"{dict(list(wrong.items())[:5])}\n{worker.log_tail()}"
    )


async def changelog_values(bootstrap: str, topic: str) -> dict[str, dict[str, int]]:
    """The last committed value per key in the table's changelog topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        latest: dict[str, dict[str, int]] = {}
        remaining = set(partitions)
        while remaining:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    latest[orjson.loads(record.key)] = orjson.loads(record.value)
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
        return latest
    finally:
        await consumer.stop()


EXACTLY_ONCE_LOSES_UPDATES = pytest.mark.xfail(
    strict=False,
    reason=(
        "faust-streaming 0.15.3 exactly_once can lose table updates across a kill -9 and a "
        "restart (seen in CI: 748 of 750 counted with the last sequence applied); orderflow "
        "supports at_least_once with idempotent handlers, see docs/ARCHITECTURE.md"
    ),
)


@pytest.mark.parametrize(
    ("guarantee", "disk"),
    [
        ("at_least_once", "wiped"),
        ("at_least_once", "kept"),
        pytest.param("exactly_once", "wiped", marks=EXACTLY_ONCE_LOSES_UPDATES),
    ],
)
async def test_kill9_recovers_exactly_from_the_changelog(
    kafka_bootstrap: str, run_id: str, tmp_path: Path, guarantee: str, disk: str
) -> None:
    app_id = f"{run_id}-counter-{guarantee.replace('_', '-')}-{disk}"
    prefix = f"{run_id}.{guarantee}.{disk}."
    topic = f"{prefix}counter.events"
    await create_topic(kafka_bootstrap, topic, PARTITIONS)

    data_dir = tmp_path / "data"
    worker = WorkerProcess(
        "tests.e2e.counter_app",
        {
            "ORDERFLOW_APP_ID": app_id,
            "ORDERFLOW_TOPIC_PREFIX": prefix,
            "ORDERFLOW_BROKER_URL": f"kafka://{kafka_bootstrap}",
            "ORDERFLOW_TOPIC_PARTITIONS": str(PARTITIONS),
            "ORDERFLOW_DATA_DIR": str(data_dir),
            "ORDERFLOW_WEB_PORT": str(free_port()),
            "ORDERFLOW_PROCESSING_GUARANTEE": guarantee,
            "ORDERFLOW_SESSION_TIMEOUT": "6",
            # A worker that Faust leaves stuck after a rebalance ends itself and is started
            # again (wait_for_counts); the recovery must stay exact through that too.
            "ORDERFLOW_STALL_TIMEOUT": "30",
        },
        tmp_path / "worker.log",
    )
    async with aiohttp.ClientSession() as session:
        try:
            worker.start()
            await asyncio.to_thread(worker.wait_ready)
            await produce(kafka_bootstrap, topic, 0, PHASE_ONE)

            # Kill it while it is still working through the backlog.
            processed = 0
            deadline = time.monotonic() + 120
            while processed < PHASE_ONE // 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                snapshot = await table_snapshot(session, worker)
                processed = sum(v["count"] for v in snapshot.values())
            assert PHASE_ONE // 4 <= processed < PHASE_ONE, (
                f"processed {processed} of {PHASE_ONE} before the kill; the test needs the "
                "worker mid-stream"
            )
            worker.kill9()
            if disk == "wiped":
                shutil.rmtree(data_dir)

            restarts = await start_ready(worker)
            restarts += await wait_for_counts(session, worker, expected_counts(PHASE_ONE))
            # The changelog has every count too, not only the worker's store: the next owner of
            # a partition rebuilds from it. (The last writes may still be on their way.)
            changelog_topic = f"{app_id}-counts-changelog"
            for _ in range(20):
                changelog = await changelog_values(kafka_bootstrap, changelog_topic)
                if changelog == expected_counts(PHASE_ONE):
                    break
                await asyncio.sleep(1)
            assert changelog == expected_counts(PHASE_ONE)

            await produce(kafka_bootstrap, topic, PHASE_ONE, PHASE_ONE + PHASE_TWO)
            total = PHASE_ONE + PHASE_TWO
            restarts += await wait_for_counts(session, worker, expected_counts(total))
        finally:
            worker.stop()
    print(f"restarts after a stall: {restarts}")
    if disk == "kept":  # the restart found the killed run's tables and discarded them
        assert "did not stop cleanly" in worker.log_path.read_text(errors="replace")
    assert (data_dir / local_state.CLEAN_STOP_MARK).exists(), worker.log_tail()

    changelog = await changelog_values(kafka_bootstrap, f"{app_id}-counts-changelog")
    assert changelog == expected_counts(PHASE_ONE + PHASE_TWO)

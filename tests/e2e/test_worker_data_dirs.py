"""How a real worker starts: one worker per data directory, Faust's own --datadir and
--web-port, and the topic configuration it creates its topics with.

A worker pointed at a data directory another worker is using refuses to start, names the
process that has it, and leaves that worker's tables alone (before the lock, the second worker
discarded the first one's RocksDB files and the first failed with FileNotFoundError).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.workers import REPO, WorkerProcess, free_port, http_get


def wait_exit(worker: WorkerProcess, within: float) -> int:
    assert worker.process is not None
    try:
        return worker.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{worker.name} did not refuse:\n{worker.log_tail()}") from None


# DescribeConfigs' config_source for a value set on the topic itself.
DYNAMIC_TOPIC_CONFIG = 1


async def min_insync_replicas(bootstrap: str, topics: list[str]) -> dict[str, tuple[str, int]]:
    """min.insync.replicas of each topic: (value, where it comes from)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = {"min.insync.replicas": None}
        resources = [ConfigResource(ConfigResourceType.TOPIC, t, wanted) for t in topics]
        found = {}
        for response in await admin.describe_configs(resources):
            for _error, _message, _type, topic, entries in response.resources:
                (entry,) = entries
                found[topic] = (entry[1], entry[3])
        return found
    finally:
        await admin.close()


def test_data_dir_lock_faust_options_and_topic_config(
    kafka_bootstrap: str, database_url: str, run_id: str, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    env = {
        "ORDERFLOW_APP_ID": f"{run_id}-datadir",
        "ORDERFLOW_TOPIC_PREFIX": f"{run_id}.datadir.",
        "ORDERFLOW_BROKER_URL": f"kafka://{kafka_bootstrap}",
        "ORDERFLOW_DATABASE_URL": database_url,
        "ORDERFLOW_TOPIC_PARTITIONS": "2",
        # The local broker has one replica per topic: 1 is what can be set here.
        "ORDERFLOW_TOPIC_MIN_INSYNC_REPLICAS": "1",
        # What the options below must win over.
        "ORDERFLOW_WEB_PORT": str(free_port()),
        "ORDERFLOW_DATA_DIR": str(tmp_path / "from-the-environment"),
    }
    port = free_port()
    # Faust's own command line: --datadir before the command, --web-port after it.
    first = WorkerProcess(
        "orderflow.app",
        env,
        tmp_path / "first.log",
        name="first",
        command=["-m", "faust", "-A", "orderflow.app", "--datadir", str(shared), "worker",
                 "--loglevel", "info", "--web-port", str(port)],
        port=port,
    )  # fmt: skip
    first.start()
    try:
        first.wait_ready(timeout=180)
        assert first.process is not None
        holder = json.loads((shared / "worker.lock").read_text())
        assert holder["pid"] == first.process.pid
        assert holder["web"] == f"http://127.0.0.1:{port}"
        tables = sorted((shared / "v1" / "tables").iterdir())
        assert tables, "the worker keeps no tables in its --datadir"
        assert not (tmp_path / "from-the-environment").exists()

        # The topics the worker created carry min.insync.replicas as a topic setting: its
        # own topics and the tables' changelogs alike.
        topics = [f"{run_id}.datadir.orders.commands", f"{run_id}-datadir-sagas-changelog"]
        configs = asyncio.run(min_insync_replicas(kafka_bootstrap, topics))
        assert configs == dict.fromkeys(topics, ("1", DYNAMIC_TOPIC_CONFIG))

        # `orderflow worker -D DIR`: refused before Faust starts, with a one-line reason.
        started = time.monotonic()
        refused = subprocess.run(
            [sys.executable, "-m", "orderflow.cli", "worker", "-D", str(shared),
             "-p", str(free_port())],
            cwd=REPO, env={**first.env}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"is in use by process {first.process.pid} on " in refused.stderr
        assert f"web http://127.0.0.1:{port}" in refused.stderr
        assert time.monotonic() - started < 60

        # A worker that skips that check (Faust's command, ORDERFLOW_DATA_DIR) is refused by
        # the lock itself before it touches the directory.
        second = WorkerProcess(
            "orderflow.app",
            {**env, "ORDERFLOW_DATA_DIR": str(shared), "ORDERFLOW_WEB_PORT": str(free_port())},
            tmp_path / "second.log",
            name="second",
        )
        second.start()
        assert wait_exit(second, within=120) != 0
        log = second.log_path.read_text(errors="replace")
        assert f"the data directory {shared} is in use by process {first.process.pid}" in log

        # The first worker lost nothing and still serves.
        assert sorted((shared / "v1" / "tables").iterdir()) == tables
        assert first.process.poll() is None, first.log_tail()
        status, ready = http_get(f"{first.url}/readyz?strict=1")
        assert status == 200, ready
        assert "FileNotFoundError" not in first.log_path.read_text(errors="replace")
    finally:
        first.stop()
    # A graceful stop gives the directory up; the next worker takes it and keeps the tables.
    assert (shared / "worker.lock").read_text() == ""
    assert (shared / "clean-stop").exists()

"""`infra.sh up/status/down` on ports and a state directory of their own.

Runs beside (never against) the services the rest of the suite uses: every service is started
on free ports, proven reachable, started again (a no-op), stopped, and checked to be gone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import INFRA

SERVICES = ("kafka", "postgres", "elasticsearch", "mongodb")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def isolated_env() -> Iterator[dict[str, str]]:
    state = Path(tempfile.mkdtemp(prefix="orderflow-infra-test-"))
    state.chmod(0o755)  # readable by the service account PostgreSQL and Elasticsearch run as
    env = {
        **os.environ,
        "ORDERFLOW_STATE_DIR": str(state),
        "ORDERFLOW_KAFKA_PORT": str(_free_port()),
        "ORDERFLOW_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "ORDERFLOW_POSTGRES_PORT": str(_free_port()),
        "ORDERFLOW_ELASTICSEARCH_PORT": str(_free_port()),
        "ORDERFLOW_ELASTICSEARCH_TRANSPORT_PORT": str(_free_port()),
        "ORDERFLOW_MONGODB_PORT": str(_free_port()),
    }
    yield env
    subprocess.run([str(INFRA), "down"], env=env, check=False, capture_output=True)
    shutil.rmtree(state, ignore_errors=True)


def _infra(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INFRA), *args], env=env, text=True, capture_output=True, timeout=900, check=False
    )


def _status(env: dict[str, str]) -> tuple[int, dict[str, tuple[str, str]]]:
    completed = _infra(env, "status")
    rows = {}
    for line in completed.stdout.splitlines()[1:]:
        name, state, *rest = line.split()
        rows[name] = (state, rest[0] if len(rest) == 2 else "")
    return completed.returncode, rows


def test_up_status_down_leave_nothing_behind(isolated_env: dict[str, str]) -> None:
    ports = {
        "kafka": int(isolated_env["ORDERFLOW_KAFKA_PORT"]),
        "postgres": int(isolated_env["ORDERFLOW_POSTGRES_PORT"]),
        "elasticsearch": int(isolated_env["ORDERFLOW_ELASTICSEARCH_PORT"]),
        "mongodb": int(isolated_env["ORDERFLOW_MONGODB_PORT"]),
    }
    code, rows = _status(isolated_env)
    assert code == 1
    assert all(rows[name][0] == "down" for name in SERVICES)

    up = _infra(isolated_env, "up")
    assert up.returncode == 0, up.stderr
    code, rows = _status(isolated_env)
    assert code == 0, rows
    pids = {name: int(rows[name][1]) for name in SERVICES}
    assert all(_listening(port) for port in ports.values())

    again = _infra(isolated_env, "up")
    assert again.returncode == 0
    assert all(f"{name} is already up" in again.stderr for name in SERVICES)
    assert {name: int(row[1]) for name, row in _status(isolated_env)[1].items()} == pids

    partial = _infra(isolated_env, "down", "--only", "mongodb")
    assert partial.returncode == 0
    code, rows = _status(isolated_env)
    assert code == 1
    assert rows["mongodb"][0] == "down"
    assert rows["kafka"][0] == "up"

    down = _infra(isolated_env, "down")
    assert down.returncode == 0, down.stderr
    code, rows = _status(isolated_env)
    assert code == 1
    assert all(rows[name][0] == "down" for name in SERVICES)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())
    assert not any(_listening(port) for port in ports.values())


def test_a_port_taken_by_a_stranger_is_refused_with_a_clear_error(
    isolated_env: dict[str, str],
) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", int(isolated_env["ORDERFLOW_MONGODB_PORT"])))
        stranger.listen()
        completed = _infra(isolated_env, "up", "--only", "mongodb")
    assert completed.returncode != 0
    assert "is in use by a process this script did not start" in completed.stderr

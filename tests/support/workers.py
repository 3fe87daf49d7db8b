"""Faust worker processes for e2e tests: start, wait until ready, kill -9, restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from orderflow.views.health import STALLED_EXIT_STATUS
from tests.support.auth import TEST_JWT_SECRET

# What every test worker gets unless the test says otherwise: the tests' token key, and no
# rate limits (the tests that are about limits set their own).
WORKER_DEFAULTS = {
    "ORDERFLOW_JWT_SECRET": TEST_JWT_SECRET,
    "ORDERFLOW_RATE_LIMIT_PUBLIC": "off",
    "ORDERFLOW_RATE_LIMIT_READS": "off",
    "ORDERFLOW_RATE_LIMIT_WRITES": "off",
    "ORDERFLOW_RATE_LIMIT_ADMIN": "off",
}

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """GET a JSON document; returns (status, body). Connection errors raise OSError."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        error.close()
        return error.code, orjson.loads(body) if body else None


class WorkerProcess:
    """One `faust worker` subprocess in its own session, with its own port and data directory."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        log_path: Path,
        name: str = "worker",
        *,
        command: list[str] | None = None,
        port: int | None = None,
    ) -> None:
        """``command`` replaces ``python -m faust -A APP worker`` (after the interpreter);
        ``port`` is where it serves when that is not ORDERFLOW_WEB_PORT."""
        self.app = app
        self.name = name
        self.port = port or int(env["ORDERFLOW_WEB_PORT"])
        self.env = {**os.environ, **WORKER_DEFAULTS, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.command = command or ["-m", "faust", "-A", app, "worker", "--loglevel", "info"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *self.command],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 120.0, *, supervised: bool = False) -> dict[str, Any]:
        """Wait until /readyz?strict=1 says the worker has recovered its tables and nothing
        is moving (no rebalance or recovery in progress, streams flowing).

        ``supervised``: a supervisor (see :func:`supervise`) starts the worker again when the
        stall watchdog ends it, so that exit is waited out; any other exit fails at once.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.process is not None
            status = self.process.poll()
            if status is not None and supervised and status == STALLED_EXIT_STATUS:
                last = f"exited with {status}; waiting for the supervisor to start it again"
                time.sleep(0.25)
                continue
            assert status is None, f"{self.name} exited with {status}:\n{self.log_tail()}"
            try:
                status, last = http_get(f"{self.url}/readyz?strict=1", timeout=2)
                if status == 200:
                    return dict(last)
            except OSError as error:
                last = error
            time.sleep(0.25)
        raise AssertionError(f"{self.name} not ready after {timeout}s: {last}\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class PaymentSimulator:
    """`orderflow payment-sim` as a subprocess on a free port."""

    def __init__(self, log_path: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PaymentSimulator:
        command = [sys.executable, "-m", "orderflow.payments.cli", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.options],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, "the payment simulator exited"
            try:
                if http_get(f"{self.url}/healthz", timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            assert time.monotonic() < deadline, "the payment simulator did not start"
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def running(processes: list[WorkerProcess]) -> Iterator[list[WorkerProcess]]:
    """Start every worker, wait until each is ready, and stop them all afterwards."""
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.wait_ready()
        yield processes
    finally:
        for process in processes:
            process.stop()


def platform_workers(
    count: int,
    directory: Path,
    *,
    name: str,
    kafka: str,
    partitions: int,
    database_url: str | None = None,
    gateway: str | None = None,
    **settings: str,
) -> list[WorkerProcess]:
    """``count`` workers of one orderflow deployment called ``name`` (its app id and topic
    prefix), each with its own web port, data directory and log in ``directory``; other
    ORDERFLOW_* settings are given by their lower-case names (``saga_step_timeout="60"``)."""
    base = {
        # A stalled worker (see orderflow.views.health) is ended sooner than in production.
        "ORDERFLOW_STALL_TIMEOUT": "30",
        "ORDERFLOW_APP_ID": name,
        "ORDERFLOW_TOPIC_PREFIX": f"{name}.",
        "ORDERFLOW_BROKER_URL": f"kafka://{kafka}",
        "ORDERFLOW_TOPIC_PARTITIONS": str(partitions),
        **({"ORDERFLOW_DATABASE_URL": database_url} if database_url else {}),
        **({"ORDERFLOW_PAYMENT_GATEWAY_URL": gateway} if gateway else {}),
        **{f"ORDERFLOW_{key.upper()}": value for key, value in settings.items()},
    }
    return [
        WorkerProcess(
            "orderflow.app",
            {
                **base,
                "ORDERFLOW_WEB_PORT": str(free_port()),
                "ORDERFLOW_DATA_DIR": str(directory / f"worker-{index}"),
            },
            directory / f"worker-{index}.log",
            name=f"worker-{index}",
        )
        for index in range(count)
    ]


async def supervise(workers: list[WorkerProcess], stop: asyncio.Event, grace: float = 3.0) -> int:
    """Restart workers that exited (as Kubernetes would), ``grace`` seconds after they died
    unless something else restarted them first; returns how many restarts it made."""
    dead_since: dict[str, float] = {}
    restarts = 0
    while not stop.is_set():
        now = time.monotonic()
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                dead_since.pop(worker.name, None)
                continue
            if now - dead_since.setdefault(worker.name, now) >= grace:
                worker.start()
                dead_since.pop(worker.name, None)
                restarts += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    return restarts

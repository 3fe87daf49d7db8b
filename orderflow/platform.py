"""``orderflow run``: the whole platform on one machine, for development and demos.

Starts the local infrastructure, the payment simulator and N worker processes (each with its
own web port and data directory, all in one consumer group), waits until every worker has
recovered its tables, stocks the demo skus that have no stock yet, prints where to look, and
supervises the processes until interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from orderflow.errors import OrderflowError
from orderflow.settings import Settings


class PlatformError(OrderflowError):
    """A process of the local platform did not start or died."""


@dataclass
class ManagedProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_ready(self) -> bool:
        # A worker is waited for until it has settled (see orderflow.views.health).
        url = self.ready_url + ("?strict=1" if self.ready_url.endswith("/readyz") else "")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def worker_processes(settings: Settings, count: int, var_dir: Path) -> list[ManagedProcess]:
    """N workers of one app: consecutive web ports from the configured one, one data dir each."""
    workers = []
    for index in range(count):
        port = settings.web_port + index
        env = {
            **os.environ,
            **settings.as_env(),
            "ORDERFLOW_WEB_PORT": str(port),
            "ORDERFLOW_DATA_DIR": str(var_dir / f"worker-{index}" / "data"),
        }
        workers.append(
            ManagedProcess(
                name=f"worker-{index}",
                command=[sys.executable, "-m", "orderflow.cli", "worker"],
                env=env,
                log_path=var_dir / "log" / f"worker-{index}.log",
                ready_url=f"http://127.0.0.1:{port}/readyz",
            )
        )
    return workers


def payment_simulator_process(settings: Settings, var_dir: Path) -> ManagedProcess:
    """The simulated payment gateway, on the host and port of ORDERFLOW_PAYMENT_GATEWAY_URL."""
    url = urlsplit(settings.payment_gateway_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    return ManagedProcess(
        name="payments",
        command=[
            sys.executable,
            "-m",
            "orderflow.payments.cli",
            "--host",
            host,
            "--port",
            str(port),
        ],
        env=dict(os.environ),
        log_path=var_dir / "log" / "payment-sim.log",
        ready_url=f"http://{host}:{port}/healthz",
    )


DEMO_STOCK = {"SKU-1": 100, "SKU-2": 100, "SKU-3": 25, "SKU-4": 10, "SKU-5": 3}


def seed_demo_stock(base_url: str, authorization: dict[str, str]) -> list[str]:
    """Stock the demo skus that have never had stock; returns the skus it stocked.
    ``authorization`` is an admin's Authorization header."""
    stocked = []
    for sku, quantity in DEMO_STOCK.items():
        read = urllib.request.Request(f"{base_url}/api/v1/inventory/{sku}", headers=authorization)
        try:
            urllib.request.urlopen(read, timeout=10).close()
            continue  # it has stock records already: leave it as it is
        except urllib.error.HTTPError as error:
            error.close()
            if error.code != 404:
                raise PlatformError(f"reading the stock of {sku} failed: {error}") from None
        request = urllib.request.Request(
            f"{base_url}/api/v1/inventory/{sku}/adjustments",
            data=orjson.dumps({"delta": quantity, "reason": "demo stock"}),
            headers={"Content-Type": "application/json", **authorization},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        stocked.append(sku)
    return stocked


DEMO_PRODUCTS: dict[str, dict[str, object]] = {
    "SKU-1": {
        "name": "Red Stoneware Mug",
        "description": "A 350 ml mug, glazed red; dishwasher safe.",
        "category": "kitchen",
        "price": 1299,
        "tags": ["mug", "gift"],
    },
    "SKU-2": {
        "name": "Café Crème Coffee Beans",
        "description": "Whole beans, medium roast, 500 g.",
        "category": "pantry",
        "price": 1599,
        "tags": ["coffee"],
    },
    "SKU-3": {
        "name": "Blue Kettle",
        "description": "A 1.7 l kettle that boils water for tea or coffee in minutes.",
        "category": "kitchen",
        "price": 3999,
        "tags": ["kettle"],
    },
    "SKU-4": {
        "name": "Loose Leaf Teapot",
        "description": "A glass teapot with a steel infuser for loose leaf tea.",
        "category": "kitchen",
        "price": 2999,
        "tags": ["tea", "teapot"],
    },
    "SKU-5": {
        "name": "Running Shoes",
        "description": "Light shoes for running on roads and trails.",
        "category": "sport",
        "price": 8999,
        "tags": ["shoes"],
    },
}


def seed_demo_catalog(base_url: str, authorization: dict[str, str]) -> list[str]:
    """Put the demo products that are not in the catalog yet; returns the ids it put."""
    added = []
    for product_id, product in DEMO_PRODUCTS.items():
        try:
            urllib.request.urlopen(f"{base_url}/api/v1/products/{product_id}", timeout=10).close()
            continue  # already in the catalog (and its document in MongoDB)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code not in (404, 503):
                raise PlatformError(f"reading product {product_id} failed: {error}") from None
        request = urllib.request.Request(
            f"{base_url}/api/v1/products/{product_id}",
            data=orjson.dumps({**product, "currency": "USD", "attributes": {}}),
            headers={"Content-Type": "application/json", **authorization},
            method="PUT",
        )
        urllib.request.urlopen(request, timeout=10).close()
        added.append(product_id)
    return added


def wait_ready(processes: list[ManagedProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending:
        for process in list(pending):
            code = process.exited()
            if code is not None:
                raise PlatformError(
                    f"{process.name} exited with status {code} during start-up; "
                    f"see {process.log_path}"
                )
            if process.is_ready():
                pending.remove(process)
        if pending and time.monotonic() > deadline:
            names = ", ".join(p.name for p in pending)
            raise PlatformError(f"not ready after {timeout:.0f}s: {names}")
        time.sleep(0.5)


MAX_RESTARTS = 5  # within RESTART_WINDOW seconds, before the platform gives up
RESTART_WINDOW = 120.0


def supervise(processes: list[ManagedProcess], echo: Callable[[str], None]) -> int:
    """Restart a process that exits (a worker's watchdog ends it when it is stuck); stop them
    all on SIGINT/SIGTERM, or if one keeps crashing. Returns an exit status."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    restarts: list[float] = []
    try:
        while not stopping:
            for process in processes:
                code = process.exited()
                if code is None:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
                if len(restarts) > MAX_RESTARTS:
                    echo(f"{process.name} keeps exiting (status {code}); see {process.log_path}")
                    return 1
                echo(f"{process.name} exited with status {code}; restarting it")
                process.start()
            time.sleep(0.5)
        echo("stopping the workers (the infrastructure keeps running: orderflow infra down)")
    finally:
        for process in processes:
            process.stop()
    return 0

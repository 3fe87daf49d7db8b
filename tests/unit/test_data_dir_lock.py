"""One worker per data directory: the lock refuses a second holder and names the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderflow.resilience.data_dir_lock import (
    LOCK_FILE,
    DataDirInUse,
    DataDirLock,
    ensure_free,
)

# A process that takes the lock, says so, and holds it until it is killed.
HOLDER = """
import sys, time
from pathlib import Path
from orderflow.resilience.data_dir_lock import DataDirLock
lock = DataDirLock(Path(sys.argv[1]))
lock.acquire(web="http://127.0.0.1:6099")
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def test_a_second_lock_on_one_directory_is_refused_until_the_first_is_released(
    tmp_path: Path,
) -> None:
    first, second = DataDirLock(tmp_path), DataDirLock(tmp_path)
    first.acquire(web="http://127.0.0.1:6066")
    try:
        with pytest.raises(DataDirInUse) as refused:
            second.acquire()
        assert refused.value.holder is not None
        assert refused.value.holder["pid"] == os.getpid()
        assert not second.held
    finally:
        first.release()
    second.acquire()
    assert second.held
    second.release()


def test_the_refusal_names_the_process_that_holds_the_directory(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(DataDirInUse) as refused:
        DataDirLock(tmp_path / "data").acquire()
    message = str(refused.value)
    assert f"is in use by process {holder.pid} on " in message
    assert "web http://127.0.0.1:6099" in message
    assert "ORDERFLOW_DATA_DIR, or --datadir" in message
    # The refused process did not wipe what the holder recorded.
    recorded = json.loads((tmp_path / "data" / LOCK_FILE).read_text())
    assert recorded["pid"] == holder.pid
    with pytest.raises(DataDirInUse):
        ensure_free(tmp_path / "data")


def test_a_killed_holder_leaves_no_stale_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 10
    lock = DataDirLock(tmp_path / "data")
    while True:
        try:
            lock.acquire()
            break
        except DataDirInUse:
            assert time.monotonic() < deadline, "the kernel never released the lock"
            time.sleep(0.05)
    assert json.loads((tmp_path / "data" / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


def test_a_directory_nobody_holds_is_free(tmp_path: Path) -> None:
    ensure_free(tmp_path / "never-used")
    lock = DataDirLock(tmp_path)
    lock.acquire()
    lock.release()
    ensure_free(tmp_path)
    # Released: the file stays (removing it would race), empty.
    assert (tmp_path / LOCK_FILE).read_text() == ""

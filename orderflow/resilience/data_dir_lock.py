"""One worker per data directory.

A worker's data directory holds the RocksDB files of the partitions it owns and the clean-stop
mark of :mod:`orderflow.resilience.local_state`. Two workers pointed at the same directory
destroy each other's state: the second one finds no clean-stop mark, discards the tables the
first has open, and the first then fails on files that are gone. So a worker takes an exclusive
lock on ``<data dir>/worker.lock`` before anything touches the directory, and holds it until
the process ends.

The lock is ``flock(2)``: the kernel releases it when the process exits, however it exits
(``kill -9`` included), so a crashed worker never leaves a stale lock behind. The file also
records who holds it (pid, host, web address, start time), so that a worker refused a lock
can name the process that has it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from orderflow.errors import OrderflowError

LOCK_FILE = "worker.lock"


class DataDirInUse(OrderflowError):
    """Another process holds the data directory's lock."""

    def __init__(self, data_dir: Path, holder: dict[str, Any] | None) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(
            f"the data directory {data_dir} is in use by {describe(holder)}: two workers must "
            "never share one (each keeps its own tables there). Give this worker a directory "
            "of its own (ORDERFLOW_DATA_DIR, or --datadir), or stop the other process first"
        )


def describe(holder: dict[str, Any] | None) -> str:
    """'process 1234 on host-a (web http://127.0.0.1:6066, started 2026-11-21T10:00:00Z)'."""
    if not holder or "pid" not in holder:
        return "another process (it has not recorded its details yet)"
    details = [f"web {holder['web']}"] if holder.get("web") else []
    if holder.get("started_at"):
        details.append(f"started {holder['started_at']}")
    where = f" on {holder['host']}" if holder.get("host") else ""
    suffix = f" ({', '.join(details)})" if details else ""
    return f"process {holder['pid']}{where}{suffix}"


class DataDirLock:
    """The exclusive lock of one data directory, held by this process until :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self, web: str = "") -> None:
        """Take the lock or raise :class:`DataDirInUse` naming the holder. ``web`` is this
        worker's address, recorded for whoever is refused next."""
        if self._file is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Not "w": truncating before the lock is ours would wipe the holder's details.
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = _parse(file.read())
            file.close()
            raise DataDirInUse(self.data_dir, holder) from None
        except BaseException:
            file.close()
            raise
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "web": web,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        file.seek(0)
        file.truncate()
        file.write(json.dumps(record) + "\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Give the lock up (the process's exit does it too). The file stays: removing it
        could let two processes lock two different files of the same name."""
        if self._file is None:
            return
        file, self._file = self._file, None
        file.seek(0)
        file.truncate()
        file.flush()
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        file.close()


def ensure_free(data_dir: Path) -> None:
    """Raise :class:`DataDirInUse` if a process holds the lock of ``data_dir`` now. A check
    for a clear refusal before a worker starts; the worker itself still takes the lock."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return
    with path.open("a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            raise DataDirInUse(data_dir, _parse(file.read())) from None
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

"""CPU seconds per component of the platform, from /proc, between two snapshots.

A component is a set of processes found by their command line: the benchmark's own workers
and payment simulator (by pid), the Kafka and Elasticsearch JVMs, FerretDB, and PostgreSQL.
PostgreSQL's backends are told apart by the database in their process title: those of the
benchmark's database count as PostgreSQL, those of FerretDB's database as the MongoDB-wire
component (FerretDB stores its documents there), and those of other databases (other runs on
the machine) are left out; the server's own processes (postmaster, checkpointer, WAL writer...)
count as PostgreSQL. A process that ended between the snapshots is missing from the second, so
its last CPU is lost: short-lived connections are undercounted. Kafka, Elasticsearch,
FerretDB and the PostgreSQL server processes are shared with whatever else runs on the machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, or None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def _command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


@dataclass(frozen=True)
class Components:
    """How to find each component's processes."""

    own: Mapping[str, list[int]]  # component -> pids started by the benchmark
    database: str  # the benchmark's PostgreSQL database

    def processes(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {name: list(pids) for name, pids in self.own.items()}
        for name in ("kafka", "postgresql", "elasticsearch", "mongodb_wire"):
            found.setdefault(name, [])
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid, command = int(entry.name), _command_line(int(entry.name))
            component = self._component(command)
            if component is not None:
                found[component].append(pid)
        return found

    def _component(self, command: str) -> str | None:
        if command.startswith("/") and " kafka.Kafka " in f"{command} ":
            return "kafka"
        if "org.elasticsearch.bootstrap.Elasticsearch" in command:
            return "elasticsearch"
        if "ferretdb" in command.split(" ", 1)[0]:
            return "mongodb_wire"
        if command.startswith("postgres: "):
            title = command.split()
            # postgres: USER DATABASE HOST(PORT) STATE
            if len(title) >= 4 and "(" in title[3]:
                if title[2] == self.database:
                    return "postgresql"
                return "mongodb_wire" if title[2] == "ferretdb" else None
            return "postgresql"  # the server's own processes
        if "/postgres -D " in command:
            return "postgresql"  # the postmaster
        return None


@dataclass(frozen=True)
class Snapshot:
    cpu: dict[str, dict[int, float]]  # component -> pid -> CPU seconds
    machine: float

    @classmethod
    def take(cls, components: Components) -> Snapshot:
        cpu = {
            name: {pid: seconds for pid in pids if (seconds := cpu_seconds(pid)) is not None}
            for name, pids in components.processes().items()
        }
        return cls(cpu, machine_busy_seconds())


def cpu_between(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per component from ``before`` to ``after`` (a process that began in
    between counts whole), and ``machine``: the whole machine's busy CPU seconds."""
    spent = {
        name: round(
            sum(seconds - before.cpu.get(name, {}).get(pid, 0.0) for pid, seconds in pids.items()),
            2,
        )
        for name, pids in after.cpu.items()
    }
    spent["machine"] = round(after.machine - before.machine, 2)
    return spent

"""A py-spy profile of one process, and where its time goes.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;...;leaf COUNT``), one
line per distinct stack, counted in samples of the busy threads (idle ones are left out). From
them: own time (the sample's leaf) and total time (anywhere in the stack) per function, own
time per package (the leaf's top-level module: faust, aiokafka, asyncio, orderflow, ...), and
total time per orderflow module. A thread sampled waiting in ``select`` (the event loop with
nothing to do, which py-spy does not always recognise as idle) counts as idle: percentages are
of the remaining, busy samples. A Faust worker has two busy threads: the main event loop
(agents, web views, producer) and the consumer's thread (aiokafka's fetcher), so the busy
samples can add up to more than the profile's seconds times its rate.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

IDLE_LEAVES = ("EpollSelector.select (selectors.py)",)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def record(py_spy: str, pid: int, seconds: int, output: Path, rate: int = 100) -> None:
    """Sample ``pid`` for ``seconds`` (py-spy pauses nothing: --nonblocking)."""
    subprocess.run(
        [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
         "--format", "raw", "--nolineno", "--threads", "--nonblocking", "--output", str(output)],
        check=True, capture_output=True, timeout=seconds + 60,
    )  # fmt: skip


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text)
    if match is None:
        return text, ""
    return match["function"], match["file"]


def _package(file: str) -> str:
    """py-spy names files from their package (faust/streams.py, asyncio/events.py)."""
    parts = Path(file).parts
    return parts[0].removesuffix(".py") if parts else "(unknown)"


def summarise(raw: Path, top: int = 25) -> dict[str, Any]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    own_by_package: Counter[str] = Counter()
    orderflow_total: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    samples = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        frames = [_frame(part) for part in parts]
        frames = [(function, file) for function, file in frames if file]  # thread/process names
        if not frames:
            continue
        leaf_function, leaf_file = frames[-1]
        if f"{leaf_function} ({leaf_file})" in IDLE_LEAVES:
            idle += count
            continue
        samples += count
        thread = next((part for part in parts if part.startswith("thread ")), "thread (?)")
        by_thread[thread] += count
        own[f"{leaf_function} ({leaf_file})"] += count
        own_by_package[_package(leaf_file)] += count
        for name in {f"{function} ({file})" for function, file in frames}:
            total[name] += count
        for module in {file for _, file in frames if file.startswith("orderflow/")}:
            orderflow_total[module] += count

    def share(counter: Counter[str], limit: int | None = top) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "percent": round(100 * n / samples, 1)}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": samples,
        "idle_samples": idle,
        "by_thread": share(by_thread, None),
        "own": share(own),
        "total": share(total),
        "own_by_package": share(own_by_package, None),
        "total_by_orderflow_module": share(orderflow_total),
    }

"""Logs every gap Faust's consumer records (see docs/ARCHITECTURE.md, "Delivery guarantees").

A gap is a run of offsets the consumer counts as processed without a stream having processed
them, meant for offsets it never read (records removed by compaction, transaction markers). On
topics with neither, a gap is never real. With this directory on PYTHONPATH and FAUST_GAP_PROBE
set, a worker logs each gap as "faust-gap-probe: gap TOPIC[P] FROM..TO", for example:

    orderflow infra up && orderflow infra down --only elasticsearch,mongodb
    PYTHONPATH=bench/gap_probe FAUST_GAP_PROBE=1 .venv/bin/pytest -q tests/e2e/test_saga.py \\
        --basetemp=/tmp/gaps
    grep -h faust-gap-probe /tmp/gaps/*0/worker-*.log | sort -u
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

PATCHED = "faust.transport.consumer"


def _log_gaps(module: ModuleType) -> None:
    consumer_class: Any = module.Consumer
    add_gap = consumer_class._add_gap
    log = logging.getLogger("faust-gap-probe")

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        log.warning("faust-gap-probe: gap %s[%d] %d..%d", tp.topic, tp.partition,
                    offset_from, offset_to)  # fmt: skip
        await add_gap(self, tp, offset_from, offset_to)

    consumer_class._add_gap = _add_gap


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches the consumer module right after its first import: importing faust here would be
    too early, since ``python -m faust`` must find it unimported."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != PATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _log_gaps(module)

        loader.exec_module = exec_and_patch
        return spec


if os.environ.get("FAUST_GAP_PROBE"):
    sys.meta_path.insert(0, _AfterImport())

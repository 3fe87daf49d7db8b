"""What the in-process comparisons share: the variants run in one process, interleaved, best of
several rounds, reported per message and as ratios against a baseline; and the command line
that writes the report to bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any


async def best_of(
    rounds: int, variants: Mapping[str, Callable[[], Awaitable[float]]]
) -> dict[str, float]:
    """The shortest of ``rounds`` timings (in seconds) of each variant, run in turn each round."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, run in variants.items():
            best[name] = min(best[name], await run())
    return best


def report(
    benchmark: str, messages: int, rounds: int, best: Mapping[str, float], baseline: str
) -> dict[str, Any]:
    """Microseconds per message of each variant, and each one's ratio to ``baseline``."""
    per_message = {name: seconds / messages * 1e6 for name, seconds in best.items()}
    return {
        "benchmark": benchmark,
        "messages": messages,
        "rounds": rounds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "microseconds_per_message": {k: round(v, 3) for k, v in per_message.items()},
        **{
            f"ratio_{name}_to_{baseline}": round(per_message[name] / per_message[baseline], 3)
            for name in per_message
            if name != baseline
        },
    }


def command_line(
    doc: str, results: Path, main: Callable[[int, int], Awaitable[dict[str, Any]]]
) -> None:
    """Parse --messages and --rounds, run ``main``, write its report to ``results`` and print it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main(args.messages, args.rounds))
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))

"""``--find-max``: the highest rate the platform holds, found with short load windows.

A window *holds* when the p99 from 202 to outcome stays under a bound (orders still without an
outcome count as slower than any) and the outcomes read within the window are at least a share
of the orders offered in it. The search grows the rate geometrically while windows hold, then
bisects between the highest rate that held and the lowest that did not, until they are closer
than the resolution or the trials run out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orderflow.loadgen.plan import PlanError


@dataclass(frozen=True, slots=True)
class Verdict:
    holds: bool
    reason: str


def judge(report: dict[str, Any], p99_bound_ms: float, min_completion: float) -> Verdict:
    """Whether a window report (orderflow.loadgen.stats.window_report) holds."""
    offered = report["offered"]
    completion = report["completed_in_window"] / offered if offered else 0.0
    p99 = report["latency_ms"]["p99_ms"]
    if p99 is None:
        return Verdict(False, "p99 unknown: more than 1% of the accepted orders had no outcome")
    if p99 >= p99_bound_ms:
        return Verdict(False, f"p99 {p99:.0f} ms >= {p99_bound_ms:g} ms")
    if completion < min_completion:
        share = f"{completion:.1%} of the offered orders completed in the window"
        return Verdict(False, f"{share}, under {min_completion:.0%}")
    return Verdict(True, f"p99 {p99:.0f} ms, completed {completion:.1%}")


@dataclass
class RateSearch:
    """Which rate to try next, given the verdicts so far."""

    start: float
    ceiling: float  # never try above this
    resolution: float  # stop when the highest hold and the lowest failure are this close
    growth: float = 2.0
    max_trials: int = 12
    floor: float = 1.0  # below this, give up: nothing holds
    held: float | None = field(default=None, init=False)  # the highest rate that held
    failed: float | None = field(default=None, init=False)  # the lowest rate that did not
    trials: list[tuple[float, bool]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.start <= self.ceiling:
            raise PlanError("find-max needs 0 < floor <= start rate <= ceiling")
        if self.resolution <= 0 or self.growth <= 1 or self.max_trials < 1:
            raise PlanError("find-max needs a positive resolution, growth > 1, trials >= 1")

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the search is over."""
        if len(self.trials) >= self.max_trials:
            return None
        if not self.trials:
            return self.start
        if self.failed is None:  # everything held so far: grow, up to the ceiling
            assert self.held is not None
            if self.held >= self.ceiling:
                return None
            return min(self.ceiling, self.held * self.growth)
        low = self.held if self.held is not None else 0.0
        if self.failed - low <= self.resolution:
            return None
        rate = round((low + self.failed) / 2, 1)
        if self.held is None and rate < self.floor:
            return None
        return rate

    def record(self, rate: float, holds: bool) -> None:
        self.trials.append((rate, holds))
        if holds:
            self.held = rate if self.held is None else max(self.held, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)

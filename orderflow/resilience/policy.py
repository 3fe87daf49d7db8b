"""How long to wait between attempts: exponential backoff with full jitter."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.1  # seconds before the first retry, at most
    max_delay: float = 5.0  # the cap of any one wait

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform between 0 and min(cap, base * 2**(attempt - 1))."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(0, ceiling)

    async def wait(self, attempt: int) -> None:
        await asyncio.sleep(self.delay(attempt))

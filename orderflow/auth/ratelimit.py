"""Token buckets per client and route class, on one worker, in bounded memory.

A class's :class:`~orderflow.settings.Quota` ``q/w`` is a bucket of ``q`` tokens refilled at
``q/w`` per second: a client may burst ``q`` requests, then goes on at the refill rate. Each
client (a token's subject, else the peer address) has its own bucket per class, so a client
that is limited does not take anything from another.

Buckets live in one ordered dict, least recently used first. A bucket that has refilled to
full is the same as no bucket, so idle ones are dropped as the oldest entries are looked at,
and if ``max_clients`` are still held the least recently used goes.

The answer carries what the IETF RateLimit header fields draft asks for:
``RateLimit-Policy: "writes";q=120;w=60`` and ``RateLimit: "writes";r=119;t=1`` (``r`` tokens
remain, the bucket is full again in ``t`` seconds), plus ``Retry-After`` when refused.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orderflow.settings import Quota


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    route_class: str
    quota: Quota
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        name = f'"{self.route_class}"'
        headers = {
            "RateLimit-Policy": f"{name};q={self.quota.requests};w={math.ceil(self.quota.window)}",
            "RateLimit": f"{name};r={self.remaining};t={self.reset}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    def __init__(
        self,
        quotas: Mapping[str, Quota | None],
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quotas = dict(quotas)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, route_class: str, client: str) -> Verdict | None:
        """Spend one token of ``client``'s bucket for ``route_class``; None if not limited."""
        quota = self.quotas.get(route_class)
        if quota is None:
            return None
        now = self.clock()
        key = (route_class, client)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(quota.requests), now)
        else:
            refill = (now - bucket.updated) * quota.per_second
            bucket.tokens = min(float(quota.requests), bucket.tokens + refill)
            bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets[key] = bucket  # most recently used: last
        self._evict(now)
        missing = quota.requests - bucket.tokens
        return Verdict(
            allowed=allowed,
            route_class=route_class,
            quota=quota,
            remaining=int(bucket.tokens),
            reset=math.ceil(missing / quota.per_second) if missing > 1e-9 else 0,
            retry_after=0 if allowed else math.ceil((1.0 - bucket.tokens) / quota.per_second),
        )

    def _evict(self, now: float) -> None:
        while self._buckets:
            (route_class, _), oldest = next(iter(self._buckets.items()))
            quota = self.quotas.get(route_class)
            idle_full = (
                quota is None
                or oldest.tokens + (now - oldest.updated) * quota.per_second >= quota.requests
            )
            if not idle_full and len(self._buckets) <= self.max_clients:
                return
            self._buckets.popitem(last=False)

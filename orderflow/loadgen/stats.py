"""What happened to each order of a run, and the figures made from it.

Times are ``time.monotonic()`` seconds of the load generator's process. An order's latency is
from its 202 (accepted) to the moment the load generator read its outcome event. An accepted
order whose outcome never came is *censored*: it counts as slower than every other, so a
percentile that falls among those orders is unknown (``None``) rather than flattering.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orderflow.loadgen.plan import Kind

CONFIRMED = "confirmed"
CANCELLED = "cancelled"
EXPECTED_OUTCOME = {
    Kind.NORMAL: CONFIRMED,
    Kind.DECLINE: "rejected:payment_declined",
    Kind.OUT_OF_STOCK: "rejected:out_of_stock",
    Kind.CANCEL: CANCELLED,
}
PERCENTILES = (50, 95, 99)


@dataclass(slots=True)
class OrderRecord:
    """One order of a run, filled in as it goes."""

    index: int
    kind: Kind
    due: float  # when the schedule wanted it sent
    sent: float | None = None  # None: never sent (the client's in-flight limit)
    accepted: float | None = None  # when its 202 arrived
    order_id: str | None = None
    customer_id: str = ""  # whose order it is (its token places and cancels it)
    error: str | None = None  # why it was not accepted: an HTTP status or an exception name
    outcome: str | None = None  # confirmed, cancelled, rejected:REASON
    outcome_at: float | None = None
    cancel_error: str | None = None  # why the load generator could not cancel it

    @property
    def latency(self) -> float | None:
        """Seconds from the 202 to the outcome event (0 if the event was read first)."""
        if self.accepted is None or self.outcome_at is None:
            return None
        return max(0.0, self.outcome_at - self.accepted)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ascending ``ordered`` values (not empty)."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q is in (0, 100]")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(seconds: Iterable[float], censored: int = 0) -> dict[str, Any]:
    """count, censored, p50/p95/p99/max in milliseconds (rounded to 0.1 ms); a figure that
    falls among the ``censored`` values (slower than any measured) is None."""
    ordered = sorted(seconds)
    result: dict[str, Any] = {"count": len(ordered), "censored": censored}
    everything = [*ordered, *[math.inf] * censored]
    for q in PERCENTILES:
        value = percentile(everything, q) if everything else None
        result[f"p{q}_ms"] = _ms(value)
    result["max_ms"] = _ms(everything[-1] if everything else None)
    return result


def _ms(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return round(value * 1000, 1)


def window_report(
    records: Sequence[OrderRecord], *, rate: float, start: float, duration: float, end: float
) -> dict[str, Any]:
    """The figures of one load window: orders due from ``start`` for ``duration`` seconds at
    ``rate`` per second, followed until ``end``."""
    sent = [r for r in records if r.sent is not None]
    accepted = [r for r in records if r.accepted is not None]
    completed = [r for r in accepted if r.outcome_at is not None]
    window_end = start + duration
    in_window = [r for r in completed if r.outcome_at is not None and r.outcome_at <= window_end]
    pending = [r for r in accepted if r.outcome_at is None]
    latencies = [r.latency for r in completed if r.latency is not None]
    by_kind: dict[str, Any] = {}
    for kind in Kind:
        of_kind = [r for r in accepted if r.kind is kind]
        if of_kind:
            by_kind[kind.value] = summary_ms(
                [r.latency for r in of_kind if r.latency is not None],
                censored=sum(1 for r in of_kind if r.outcome_at is None),
            )
    unexpected = Counter(
        f"{r.kind.value}->{r.outcome}"
        for r in completed
        if r.outcome != EXPECTED_OUTCOME[r.kind] and r.cancel_error is None
    )
    return {
        "rate": rate,
        "duration_s": duration,
        "offered": len(records),
        "sent": len(sent),
        "not_sent": len(records) - len(sent),
        "accepted": len(accepted),
        "http_errors": dict(Counter(r.error for r in records if r.error is not None)),
        "completed": len(completed),
        "completed_in_window": len(in_window),
        "completed_per_s": round(len(in_window) / duration, 2),
        "pending": len(pending),
        "followed_s": round(end - window_end, 2),
        "outcomes": dict(Counter(r.outcome for r in completed if r.outcome is not None)),
        "unexpected_outcomes": dict(unexpected),
        "cancel_errors": dict(Counter(r.cancel_error for r in records if r.cancel_error)),
        "latency_ms": summary_ms(latencies, censored=len(pending)),
        "latency_ms_by_kind": by_kind,
        "accept_ms": summary_ms(
            r.accepted - r.sent for r in accepted if r.sent is not None and r.accepted is not None
        ),
        "sender_lateness_ms": summary_ms(r.sent - r.due for r in sent if r.sent is not None),
    }


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for the progress line printed every second."""

    elapsed: float
    due: int
    sent: int
    accepted: int
    errors: int
    completed: int
    completed_last_second: int
    pending: int
    p99_last_second: float | None  # seconds, of the outcomes read in the last second
    lateness_max: float  # seconds, of the orders sent in the last second


def progress_line(progress: Progress) -> str:
    p99 = "-" if progress.p99_last_second is None else f"{progress.p99_last_second * 1000:.0f}ms"
    return (
        f"[{progress.elapsed:5.1f}s] due {progress.due} sent {progress.sent} "
        f"accepted {progress.accepted} errors {progress.errors} | "
        f"completed {progress.completed} (+{progress.completed_last_second}/s, p99 {p99}) "
        f"pending {progress.pending} | sender late max {progress.lateness_max * 1000:.0f}ms"
    )

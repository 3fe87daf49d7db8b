"""What a load run sends and when: the schedule, the mix of order kinds, the order bodies.

Everything here is pure and seeded, so that two runs with the same options send the same
orders at the same offsets from their start.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from orderflow.errors import OrderflowError

DECLINED_TOKEN = "tok_decline"  # the payment simulator declines it (orderflow.payments)
APPROVED_TOKEN = "tok_visa"
UNIT_PRICE = 1000  # minor units; far below the simulator's default decline limit
CUSTOMERS = 1000  # customers per run: each customer's recent-orders list stays short
MAX_ADJUSTMENT = 1_000_000  # the most one stock adjustment may add (orderflow.views.inventory)


class PlanError(OrderflowError):
    """Options that do not describe a load run."""


class Kind(StrEnum):
    """What an order is meant to end as."""

    NORMAL = "normal"  # confirmed
    DECLINE = "decline"  # rejected: payment_declined
    OUT_OF_STOCK = "out_of_stock"  # rejected: out_of_stock (one line asks for an empty sku)
    CANCEL = "cancel"  # cancelled by the load generator once the saga has published it


@dataclass(frozen=True, slots=True)
class Mix:
    """The share of each kind of order other than normal ones, each from 0 to 1."""

    decline: float = 0.0
    out_of_stock: float = 0.0
    cancel: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            share = getattr(self, field.name)
            if not 0.0 <= share <= 1.0:
                raise PlanError(f"mix: {field.name} must be from 0 to 1, not {share}")
        if self.decline + self.out_of_stock + self.cancel > 1.0 + 1e-9:
            raise PlanError("mix: the shares add up to more than 1")

    @property
    def normal(self) -> float:
        return max(0.0, 1.0 - self.decline - self.out_of_stock - self.cancel)

    def shares(self) -> dict[Kind, float]:
        return {
            Kind.NORMAL: self.normal,
            Kind.DECLINE: self.decline,
            Kind.OUT_OF_STOCK: self.out_of_stock,
            Kind.CANCEL: self.cancel,
        }

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``decline=0.05,out_of_stock=0.05,cancel=2%``: shares as fractions or percentages;
        kinds not named have a share of 0, and the rest of the orders are normal."""
        names = {field.name for field in fields(cls)}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, equals, raw = part.partition("=")
            name = name.strip().replace("-", "_")
            if not equals or name not in names:
                raise PlanError(
                    f"mix: {part!r} is not NAME=SHARE with NAME one of {', '.join(sorted(names))}"
                )
            if name in values:
                raise PlanError(f"mix: {name} is given twice")
            raw = raw.strip()
            try:
                share = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
            except ValueError:
                raise PlanError(f"mix: {part!r}: the share must be a number") from None
            values[name] = share
        return cls(**values)

    def __str__(self) -> str:
        shares = {name: getattr(self, name) for name in ("decline", "out_of_stock", "cancel")}
        return ",".join(f"{name}={share:g}" for name, share in shares.items() if share)


def send_offsets(rate: float, duration: float) -> list[float]:
    """Seconds from the start at which each order is due: ``rate`` per second, evenly spaced,
    for ``duration`` seconds (the first at 0, none at ``duration`` itself)."""
    if rate <= 0 or duration <= 0:
        raise PlanError("the rate and the duration must be positive")
    count = math.ceil(rate * duration - 1e-9)
    return [index / rate for index in range(count)]


def kinds(mix: Mix, count: int, rng: random.Random) -> list[Kind]:
    """``count`` kinds in the proportions of ``mix`` (largest remainders, so the counts are
    exact to one order), in a seeded random order."""
    shares = mix.shares()
    exact = {kind: share * count for kind, share in shares.items()}
    counts = {kind: math.floor(value) for kind, value in exact.items()}
    by_remainder = sorted(shares, key=lambda kind: exact[kind] - counts[kind], reverse=True)
    for kind in by_remainder[: count - sum(counts.values())]:
        counts[kind] += 1
    sequence = [kind for kind in Kind for _ in range(counts[kind])]
    rng.shuffle(sequence)
    return sequence


@dataclass(frozen=True, slots=True)
class Catalog:
    """The skus of one run. Stocked skus start with ``stock`` units each; empty ones are never
    stocked, so an order for one is rejected out of stock."""

    tag: str
    skus: tuple[str, ...]
    stock: int

    @classmethod
    def of(cls, tag: str, count: int, stock: int) -> Catalog:
        if count < 1:
            raise PlanError("a run needs at least one sku")
        return cls(tag, tuple(f"{tag}-SKU-{index:04d}" for index in range(count)), stock)

    @property
    def count(self) -> int:
        return len(self.skus)

    def empty_sku(self, index: int) -> str:
        return f"{self.tag}-EMPTY-{index % self.count:04d}"


def stock_per_sku(orders: int, lines: int, skus: int) -> int:
    """Units per sku so that ``orders`` orders of ``lines`` lines (one unit each) never run
    out: twice the fair share (the skus are drawn at random), at least 100, at most what one
    adjustment may add."""
    fair_share = math.ceil(orders * lines / skus)
    return min(MAX_ADJUSTMENT, max(100, 2 * fair_share))


def order_body(
    kind: Kind, index: int, catalog: Catalog, lines: int, rng: random.Random
) -> dict[str, Any]:
    """The POST /api/v1/orders body of order number ``index`` of the run."""
    if not 1 <= lines <= catalog.count:
        raise PlanError(f"an order has from 1 to --skus ({catalog.count}) lines, not {lines}")
    skus: Sequence[str] = rng.sample(catalog.skus, lines)
    order_lines = [{"sku": sku, "quantity": 1, "unit_price": UNIT_PRICE} for sku in skus]
    if kind is Kind.OUT_OF_STOCK:
        order_lines[-1]["sku"] = catalog.empty_sku(index)
    return {
        "customer_id": f"{catalog.tag}-customer-{index % CUSTOMERS}",
        "currency": "USD",
        "lines": order_lines,
        "payment": {"token": DECLINED_TOKEN if kind is Kind.DECLINE else APPROVED_TOKEN},
    }

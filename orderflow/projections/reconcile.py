"""Continuous reconciliation: the read side is compared with the tables it projects, and what
fell behind is published again.

Every worker walks the read-model tables of the partitions it owns (``orders_view``,
``products_view``), a page per table every ``ORDERFLOW_RECONCILE_INTERVAL`` seconds. For each
page it asks every store of the document (Elasticsearch, MongoDB) for its stored versions, by
id; a document a store lacks, or holds at an older version, is published again to its
documents topic, and the sinks write it (versioned, so a copy the store already has changes
nothing). Documents changed in the last ``ORDERFLOW_RECONCILE_GRACE`` seconds are left to the
sinks, which may simply not have written them yet. A pass ends when every table has been
walked; a rebalance starts the walk again on the new partitions.

The cost is bounded: at most ``ORDERFLOW_RECONCILE_PAGE`` documents per table per interval,
each one a read by id in each store. The figures are metrics (``orderflow_read_side_*``):
documents checked, found behind (the last complete pass) and published again, per projection.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orderflow.domain.catalog import ProductView
from orderflow.observability.metrics import (
    READ_SIDE_BEHIND,
    READ_SIDE_CHECKED,
    READ_SIDE_REPUBLISHED,
)
from orderflow.projections.registry import PROJECTIONS, Projection
from orderflow.projections.stores import Store
from orderflow.resilience.retry import is_transient
from orderflow.tables.typed import TypedTable
from orderflow.topics import publish_document

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """What reconciliation needs of one table value."""

    version: int
    changed_at: float  # epoch seconds
    document: dict[str, Any]


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def order_entry(view: Any) -> Entry:
    return Entry(int(view["version"]), _epoch(view["updated_at"]), dict(view))


def product_entry(view: ProductView) -> Entry | None:
    if not view.listed:
        return None  # never published: no store should hold it
    return Entry(view.version, _epoch(view.updated_at), view.document())


@dataclass
class Source:
    """A read-model table, how to read its values, and the projections fed from it."""

    table: TypedTable[Any]
    entry: Callable[[Any], Entry | None]
    projections: Sequence[Projection]
    publish: Callable[[str, dict[str, Any]], Any]  # (key, document) -> awaitable
    walk: Iterator[tuple[str, Any]] | None = None
    behind: dict[str, int] = field(default_factory=dict)  # this pass, per projection


async def behind_in(store: Store, entries: dict[str, Entry]) -> list[str]:
    """The keys of ``entries`` that ``store`` lacks or holds at an older version."""
    stored = await store.versions(list(entries))
    return [key for key, entry in entries.items() if stored.get(key, -1) < entry.version]


class Reconciler:
    def __init__(
        self,
        sources: Sequence[Source],
        stores: Callable[[Projection], Store],
        *,
        page: int,
        grace: float,
        generation: Callable[[], int],
        settled: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.stores = stores
        self.page = page
        self.grace = grace
        self._generation = generation
        self._settled = settled
        self._clock = clock
        self._walking: int | None = None  # the consumer generation the walks belong to

    async def tick(self) -> int:
        """Check a page of each table; returns how many documents were published again."""
        if not self._settled():
            return 0  # tables are being recovered or handed over
        generation = self._generation()
        if generation != self._walking:
            self._walking = generation
            for source in self.sources:
                source.walk, source.behind = None, {}
        republished = 0
        for source in self.sources:
            republished += await self._check_page(source)
        return republished

    async def _check_page(self, source: Source) -> int:
        if source.walk is None:
            source.walk = iter(source.table.items())
            source.behind = {p.name: 0 for p in source.projections}
        now = self._clock()
        entries: dict[str, Entry] = {}
        taken = 0
        for key, value in itertools.islice(source.walk, self.page):
            taken += 1
            entry = source.entry(value)
            if entry is not None and now - entry.changed_at >= self.grace:
                entries[key] = entry
        if taken < self.page:  # the walk is over: its figures stand until the next one
            for name, count in source.behind.items():
                READ_SIDE_BEHIND.labels(name).set(count)
            source.walk = None
        if not entries:
            return 0
        repair: set[str] = set()
        for projection in source.projections:
            try:
                behind = await behind_in(self.stores(projection), entries)
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning("reconcile: %s did not answer: %s", projection.name, error)
                continue
            READ_SIDE_CHECKED.labels(projection.name).inc(len(entries))
            source.behind[projection.name] += len(behind)
            repair.update(behind)
            if behind:
                READ_SIDE_REPUBLISHED.labels(projection.name).inc(len(behind))
                log.warning(
                    "reconcile: %s is behind on %d of %d documents (e.g. %s): publishing again",
                    projection.name,
                    len(behind),
                    len(entries),
                    behind[0],
                )
        for key in sorted(repair):
            await source.publish(key, entries[key].document)
        return len(repair)


def register(app: OrderflowApp) -> None:
    settings = app.settings
    if settings.reconcile_interval <= 0:
        return
    bus, data = app.bus, app.data

    def publisher(topic: Any) -> Callable[[str, dict[str, Any]], Any]:
        return lambda key, document: publish_document(topic, key, document)

    sources = [
        Source(
            data.orders_view,
            order_entry,
            [PROJECTIONS["orders-search"], PROJECTIONS["orders-documents"]],
            publisher(bus.orders_documents),
        ),
        Source(
            data.products_view,
            product_entry,
            [PROJECTIONS["products-search"], PROJECTIONS["products-documents"]],
            publisher(bus.products_documents),
        ),
    ]
    reconciler = Reconciler(
        sources,
        app.read_side.store,
        page=settings.reconcile_page,
        grace=settings.reconcile_grace,
        generation=lambda: app.consumer_generation_id,
        settled=lambda: not (app.rebalancing or app.in_recovery),
    )

    async def reconcile() -> None:
        try:
            await reconciler.tick()
        except Exception:
            log.exception("reconcile: a pass failed; the next tick starts where it was")

    app.timer(interval=settings.reconcile_interval, name=f"{__name__}.reconcile")(reconcile)

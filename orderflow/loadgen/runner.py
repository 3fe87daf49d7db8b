"""The load generator: stocks the run's skus, sends orders open-loop, cancels those meant to be
cancelled, prints a progress line every second and reports each load window.

Open loop: every order is sent at its due time whether or not earlier ones were answered, so a
slow platform shows as latency and pending orders rather than as a lower offered rate. How late
the sender itself was is recorded (``sender_lateness_ms``): a late sender means the machine,
not the platform, limited the run. The only brake is ``max_in_flight``: an order due while
that many requests are unanswered is counted as not sent instead of queueing in the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from orderflow.errors import OrderflowError
from orderflow.loadgen.credentials import Credentials
from orderflow.loadgen.plan import Catalog, Mix, kinds, order_body, send_offsets
from orderflow.loadgen.search import RateSearch, judge
from orderflow.loadgen.stats import (
    OrderRecord,
    Progress,
    percentile,
    progress_line,
    window_report,
)
from orderflow.loadgen.watcher import OutcomeWatcher

JSON = {"Content-Type": "application/json"}
CANCEL_RETRY_DELAY = 0.02  # seconds between cancel attempts while the order is not readable yet


class LoadError(OrderflowError):
    """The run could not be prepared (the workers refused the stock, or never showed it)."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    workers: tuple[str, ...]  # base URLs, e.g. http://127.0.0.1:6066
    lines: int = 1
    mix: Mix = field(default_factory=Mix)
    follow: float = 10.0  # seconds to keep reading outcomes after a window's last order is due
    seed: int = 1
    max_in_flight: int = 2000
    http_timeout: float = 10.0
    cancel_within: float = 10.0  # seconds to keep trying to cancel an order (404 until readable)
    progress: bool = True
    credentials: Credentials | None = None  # None: the platform takes requests without tokens


def client_session(max_in_flight: int, http_timeout: float) -> aiohttp.ClientSession:
    """The HTTP client of the load generator (and of the baselines measured beside it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=http_timeout),
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadGenerator:
    """One session against the workers: ``async with`` it, :meth:`stock`, then run windows."""

    def __init__(
        self,
        options: LoadOptions,
        *,
        bootstrap_servers: str,
        events_topic: str,
        echo: Callable[[str], None],
    ) -> None:
        if not options.workers:
            raise LoadError("no worker URLs")
        self.options = options
        self.echo = echo
        self.watcher = OutcomeWatcher(bootstrap_servers, events_topic, on_placed=self._cancel_soon)
        self._rng = random.Random(options.seed)
        self._next_index = 0
        self._requests: set[asyncio.Task[None]] = set()
        self._cancels: set[asyncio.Task[None]] = set()
        self._cancelled: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._catalog: Catalog | None = None
        self.last_window: list[OrderRecord] = []  # the orders of the latest window
        self._earlier: list[OrderRecord] = []  # accepted orders of earlier windows, unfinished

    async def __aenter__(self) -> LoadGenerator:
        self._session = client_session(self.options.max_in_flight, self.options.http_timeout)
        try:
            await self.watcher.start()
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in (*self._requests, *self._cancels):
            task.cancel()
        await asyncio.gather(*self._requests, *self._cancels, return_exceptions=True)
        await self.watcher.close()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use the load generator in `async with`"
        return self._session

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LoadError("stock the run's skus before sending orders")
        return self._catalog

    def _admin(self) -> dict[str, str]:
        credentials = self.options.credentials
        return credentials.admin() if credentials is not None else {}

    def _customer(self, customer_id: str) -> dict[str, str]:
        credentials = self.options.credentials
        return credentials.customer(customer_id) if credentials is not None else {}

    def _worker(self, index: int) -> str:
        return self.options.workers[index % len(self.options.workers)]

    # -- stock -------------------------------------------------------------------------------

    async def stock(self, catalog: Catalog, within: float = 120.0) -> None:
        """Add ``catalog.stock`` units to every sku of the run and wait until each shows them
        (the skus are the run's own, so none had stock before)."""
        limit = asyncio.Semaphore(16)

        async def adjust(index: int, sku: str) -> None:
            url = f"{self._worker(index)}/api/v1/inventory/{sku}/adjustments"
            body = {"delta": catalog.stock, "reason": f"loadgen {catalog.tag}"}
            headers = {**JSON, **self._admin()}
            async with limit, self.session.post(url, data=orjson.dumps(body), headers=headers) as r:
                if r.status != 202:
                    raise LoadError(f"stocking {sku}: HTTP {r.status}: {await r.text()}")

        async def shows(index: int, sku: str) -> None:
            url = f"{self._worker(index + 1)}/api/v1/inventory/{sku}"
            while True:
                async with limit, self.session.get(url, headers=self._admin()) as response:
                    if response.status == 200:
                        level = await response.json()
                        if level["on_hand"] >= catalog.stock:
                            return
                await asyncio.sleep(0.2)

        await asyncio.gather(*(adjust(i, sku) for i, sku in enumerate(catalog.skus)))
        try:
            async with asyncio.timeout(within):
                await asyncio.gather(*(shows(i, sku) for i, sku in enumerate(catalog.skus)))
        except TimeoutError:
            raise LoadError(
                f"the stock of the run's skus did not show within {within:g}s"
            ) from None
        self._catalog = catalog

    # -- one load window ---------------------------------------------------------------------

    async def window(self, rate: float, duration: float) -> dict[str, Any]:
        """Send ``rate`` orders per second for ``duration`` seconds, follow their outcomes for
        up to ``options.follow`` seconds more, and report."""
        offsets = send_offsets(rate, duration)
        planned = kinds(self.options.mix, len(offsets), self._rng)
        cpu_before = _cpu_seconds()
        start = time.monotonic() + 0.1
        first = self._next_index
        self._next_index += len(offsets)
        records = [
            OrderRecord(first + n, kind, start + offset)
            for n, (kind, offset) in enumerate(zip(planned, offsets, strict=True))
        ]
        self._earlier += self.last_window
        self.last_window = records
        progress = (
            asyncio.create_task(self._report_progress(records, start))
            if self.options.progress
            else None
        )
        try:
            await self._send(records)
            await asyncio.sleep(max(0.0, start + duration - time.monotonic()))
            await self._follow(records, until=start + duration + self.options.follow)
        finally:
            if progress is not None:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
        report = window_report(
            records, rate=rate, start=start, duration=duration, end=time.monotonic()
        )
        report["load_generator_cpu_s"] = round(_cpu_seconds() - cpu_before, 2)
        return report

    async def quiesce(self, within: float) -> float:
        """Wait until every order of the earlier windows has its outcome (a saturated window
        leaves a backlog that would slow the next one down), for at most ``within`` seconds;
        returns the seconds waited."""
        started = time.monotonic()
        self._earlier = [r for r in (*self._earlier, *self.last_window) if r.accepted]
        self.last_window = []
        while self._earlier and time.monotonic() - started < within:
            await asyncio.sleep(0.2)
            self._earlier = [r for r in self._earlier if r.outcome is None]
        return round(time.monotonic() - started, 1)

    async def _send(self, records: Sequence[OrderRecord]) -> None:
        for record in records:
            delay = record.due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = order_body(
                record.kind, record.index, self.catalog, self.options.lines, self._rng
            )
            if len(self._requests) >= self.options.max_in_flight:
                continue  # not sent: counted as such in the report
            task = asyncio.create_task(self._place(record, body))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _place(self, record: OrderRecord, body: dict[str, Any]) -> None:
        url = f"{self._worker(record.index)}/api/v1/orders"
        headers = {
            **JSON,
            **self._customer(body["customer_id"]),
            "Idempotency-Key": f'"{self.catalog.tag}-{record.index}"',
        }
        record.customer_id = body["customer_id"]
        record.sent = time.monotonic()
        try:
            async with self.session.post(url, data=orjson.dumps(body), headers=headers) as answer:
                payload = await answer.read()
                if answer.status != 202:
                    record.error = f"HTTP {answer.status}"
                    return
                record.order_id = orjson.loads(payload)["order_id"]
                record.accepted = time.monotonic()
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, KeyError) as error:
            record.error = type(error).__name__
            return
        self.watcher.follow(record)

    async def _follow(self, records: Sequence[OrderRecord], until: float) -> None:
        """Wait until every accepted order has its outcome and no request is unanswered, or
        until ``until``."""
        while time.monotonic() < until:
            unanswered = any(
                r.sent is not None and r.accepted is None and r.error is None for r in records
            )
            if not unanswered and all(r.outcome is not None for r in records if r.accepted):
                return
            await asyncio.sleep(0.05)

    # -- cancellations -----------------------------------------------------------------------

    def _cancel_soon(self, record: OrderRecord) -> None:
        """The saga published an order meant to be cancelled: cancel it."""
        if record.order_id is None or record.order_id in self._cancelled:
            return
        self._cancelled.add(record.order_id)
        task = asyncio.create_task(self._cancel(record))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _cancel(self, record: OrderRecord) -> None:
        url = f"{self._worker(record.index)}/api/v1/orders/{record.order_id}/cancel"
        body = orjson.dumps({"reason": "loadgen"})
        deadline = time.monotonic() + self.options.cancel_within
        status: int | str = "no answer"
        while time.monotonic() < deadline:
            try:
                headers = {**JSON, **self._customer(record.customer_id)}
                async with self.session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as error:
                status = type(error).__name__
            if status in (202, 409):  # cancelling, or it had ended already (its outcome)
                return
            if status != 404:  # 404: the read model does not have the order yet
                break
            await asyncio.sleep(CANCEL_RETRY_DELAY)
        record.cancel_error = f"HTTP {status}" if isinstance(status, int) else status
        self.watcher.cancel_failed(record)

    # -- progress ----------------------------------------------------------------------------

    async def _report_progress(self, records: Sequence[OrderRecord], start: float) -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            recent = sorted(
                r.latency
                for r in records
                if r.outcome_at is not None and r.latency is not None and r.outcome_at > now - 1
            )
            lateness = [r.sent - r.due for r in records if r.sent is not None and r.sent > now - 1]
            self.echo(
                progress_line(
                    Progress(
                        elapsed=now - start,
                        due=sum(1 for r in records if r.due <= now),
                        sent=sum(1 for r in records if r.sent is not None),
                        accepted=sum(1 for r in records if r.accepted is not None),
                        errors=sum(1 for r in records if r.error is not None),
                        completed=sum(1 for r in records if r.outcome is not None),
                        completed_last_second=len(recent),
                        pending=sum(1 for r in records if r.accepted and r.outcome is None),
                        p99_last_second=percentile(recent, 99) if recent else None,
                        lateness_max=max(lateness, default=0.0),
                    )
                )
            )

    # -- --find-max --------------------------------------------------------------------------

    async def find_max(
        self,
        search: RateSearch,
        *,
        window: float,
        p99_bound_ms: float,
        min_completion: float,
        settle: float,
        quiesce: float = 120.0,
    ) -> dict[str, Any]:
        """Windows of ``window`` seconds at the rates ``search`` picks, each after the orders
        of the ones before have their outcomes; the highest rate that held."""
        trials = []
        while (rate := search.next_rate()) is not None:
            waited = await self.quiesce(quiesce)
            self.echo(f"find-max: {rate:g} orders/s for {window:g}s (after {waited:g}s of quiet)")
            report = await self.window(rate, window)
            report["quiesced_s"] = waited
            verdict = judge(report, p99_bound_ms, min_completion)
            search.record(rate, verdict.holds)
            outcome = "holds" if verdict.holds else "fails"
            self.echo(f"find-max: {rate:g} orders/s {outcome}: {verdict.reason}")
            trials.append(
                {"rate": rate, "holds": verdict.holds, "reason": verdict.reason, "report": report}
            )
            await asyncio.sleep(settle)
        return {
            "max_rate": search.held,
            "lowest_failing_rate": search.failed,
            "p99_bound_ms": p99_bound_ms,
            "min_completion": min_completion,
            "window_s": window,
            "trials": trials,
        }

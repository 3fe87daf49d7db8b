"""Completed sagas per second and latency from 202 to outcome, against baselines of the same run.

Starts a deployment of its own (payment simulator and N workers on the running local
infrastructure, with their own app id, topics, database, indices), then, in one run:

1. the baselines: a raw aiokafka consume -> transform -> produce loop over the same broker
   (messages/s) and bare aiohttp endpoints driven by the load generator's client (requests/s);
2. ``orderflow loadgen`` windows at each of ``--rates`` (open loop, outcomes read from
   orders.events), with CPU seconds per component and Kafka records written per order;
3. optionally a py-spy profile of worker-0 under ``--profile-rate``;
4. optionally ``--find-max``: the highest rate whose p99 stays under ``--p99-bound-ms``;
5. the intake in a closed loop with the same client as the bare endpoint (requests/s).

Every figure is also given as a ratio to a baseline of the same run, because the machine is
shared and its speed varies from run to run.

    .venv/bin/python bench/saga_throughput.py --rates 20,50,80,100 --duration 30 \\
        --find-max --profile-rate 80

Writes bench/results/saga_throughput.json and .md (and the profile's collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _components import Components, Snapshot, cpu_between
from _hops import hops
from _platform import Platform, own_platform
from _prefill import prefill
from _profile import record, summarise
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from baselines import bare_http, closed_loop, kafka_hop_latency, kafka_loop

from orderflow.loadgen.credentials import Credentials
from orderflow.loadgen.plan import Catalog, Kind, Mix, order_body, stock_per_sku
from orderflow.loadgen.runner import LoadGenerator, LoadOptions
from orderflow.loadgen.search import RateSearch
from orderflow.loadgen.watcher import ORDERS_EVENTS

RESULTS = Path(__file__).parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,50,80,100", help="orders/s of each window")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per window")
    parser.add_argument(
        "--follow",
        type=float,
        default=60.0,
        help="seconds to wait for a window's outcomes after its load",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between windows")
    parser.add_argument(
        "--quiesce",
        type=float,
        default=120.0,
        help="at most this long, wait for earlier windows' orders first",
    )
    parser.add_argument("--mix", default="decline=0.05,out_of_stock=0.05,cancel=0.02")
    parser.add_argument("--lines", type=int, default=1)
    parser.add_argument("--skus", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--web-port", type=int, default=6166)
    parser.add_argument("--gateway-port", type=int, default=7166)
    parser.add_argument("--baseline-messages", type=int, default=100_000)
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=5.0,
        help="seconds of each closed-loop HTTP measurement",
    )
    parser.add_argument("--http-concurrency", type=int, default=32)
    parser.add_argument(
        "--profile-rate",
        type=float,
        default=0.0,
        help="profile worker-0 under this rate (0: no profile)",
    )
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--find-max", action="store_true")
    parser.add_argument("--p99-bound-ms", type=float, default=300.0)
    parser.add_argument("--window", type=float, default=10.0, help="find-max: seconds per trial")
    parser.add_argument("--start-rate", type=float, default=20.0)
    parser.add_argument("--max-rate", type=float, default=400.0)
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="orders written to the read-side stores before anything is measured",
    )
    parser.add_argument(
        "--output", default="saga_throughput", help="base name of the result files in bench/results"
    )
    return parser.parse_args()  # fmt: skip


async def kafka_records(bootstrap: str, name: str) -> int:
    """Records in every topic of the deployment (its end offsets summed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if name in t]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


def per_thousand(cpu: dict[str, float], orders: int) -> dict[str, float]:
    return {k: round(v / orders * 1000, 2) for k, v in cpu.items()} if orders else {}


class Bench:
    def __init__(self, args: argparse.Namespace, live: Platform) -> None:
        self.args = args
        self.live = live
        self.bootstrap = live.settings.bootstrap_servers
        pids = live.pids()
        self.components = Components(
            own={
                "workers": [pids[p.name] for p in live.workers],
                "payment_simulator": [pids["payments"]],
                "load_generator": [os.getpid()],
            },
            database=live.settings.database_url.rsplit("/", 1)[1],
        )

    async def measured_window(self, generator: LoadGenerator, rate: float) -> dict[str, Any]:
        waited = await generator.quiesce(self.args.quiesce)
        records_before = await kafka_records(self.bootstrap, self.live.name)
        since_ms = int(time.time() * 1000)
        before = Snapshot.take(self.components)
        report = await generator.window(rate, self.args.duration)
        after = Snapshot.take(self.components)
        records = await kafka_records(self.bootstrap, self.live.name) - records_before
        report["hops_ms"] = await hops(
            self.bootstrap, self.live.settings.topic_prefix, generator.last_window, since_ms
        )
        cpu = cpu_between(before, after)
        report["quiesced_s"] = waited
        report["cpu_s"] = cpu
        report["cpu_s_per_1000_orders"] = per_thousand(cpu, report["completed"])
        report["kafka_records_per_order"] = (
            round(records / report["completed"], 2) if report["completed"] else None
        )
        return report

    async def profile(self, generator: LoadGenerator, stem: str) -> dict[str, Any]:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        raw = RESULTS / f"{stem}.profile.txt"
        worker = self.live.pids()["worker-0"]
        rate, seconds = self.args.profile_rate, self.args.profile_seconds
        await generator.quiesce(self.args.quiesce)
        load = asyncio.create_task(generator.window(rate, seconds + 4))
        await asyncio.sleep(2)  # past the start of the window
        await asyncio.to_thread(record, py_spy, worker, seconds, raw)
        report = await load
        return {"rate": rate, "seconds": seconds, "pid": worker, "raw": raw.name,
                "summary": summarise(raw), "window": report}  # fmt: skip

    async def run(self) -> dict[str, Any]:
        args = self.args
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
        urls = self.live.worker_urls
        result: dict[str, Any] = {"baselines": {}}
        if args.prefill:
            print(f"prefill: {args.prefill} orders into the stores", file=sys.stderr)
            result["prefill"] = await prefill(self.live.settings, args.prefill)
        print("baseline: raw aiokafka loop", file=sys.stderr)
        result["baselines"]["kafka_loop"] = await kafka_loop(self.bootstrap, args.baseline_messages)
        print("baseline: raw aiokafka hop latency", file=sys.stderr)
        result["baselines"]["kafka_hop"] = await kafka_hop_latency(self.bootstrap, 50, 5)
        print("baseline: bare aiohttp endpoints", file=sys.stderr)
        result["baselines"]["bare_http"] = await bare_http(
            len(urls), args.http_concurrency, args.http_seconds
        )
        credentials = Credentials.from_settings(self.live.settings)
        options = LoadOptions(
            workers=tuple(urls),
            lines=args.lines,
            mix=Mix.parse(args.mix),
            follow=args.follow,
            credentials=credentials,
        )
        planned = sum(rates) * args.duration + args.profile_rate * (args.profile_seconds + 4)
        planned += 12 * args.max_rate * args.window if args.find_max else 0
        planned += 2000 * args.http_seconds  # the closed loop
        catalog = Catalog.of(
            f"lg{secrets.token_hex(3)}",
            args.skus,
            stock_per_sku(int(planned), args.lines, args.skus),
        )
        async with LoadGenerator(
            options,
            bootstrap_servers=self.bootstrap,
            events_topic=self.live.settings.topic(ORDERS_EVENTS),
            echo=lambda line: print(line, file=sys.stderr, flush=True),
        ) as generator:
            await generator.stock(catalog)
            result["windows"] = []
            for rate in rates:
                print(f"window: {rate:g} orders/s for {args.duration:g}s", file=sys.stderr)
                result["windows"].append(await self.measured_window(generator, rate))
                await asyncio.sleep(args.settle)
            if args.profile_rate:
                print(f"profile: worker-0 under {args.profile_rate:g}/s", file=sys.stderr)
                result["profile"] = await self.profile(generator, args.output)
                await asyncio.sleep(args.settle)
            if args.find_max:
                search = RateSearch(start=args.start_rate, ceiling=args.max_rate, resolution=5)
                result["find_max"] = await generator.find_max(
                    search, window=args.window, p99_bound_ms=args.p99_bound_ms,
                    min_completion=0.95, settle=args.settle, quiesce=args.quiesce,
                )  # fmt: skip
        rng = random.Random(2)
        print("intake: closed loop with the baseline's client", file=sys.stderr)
        result["intake_closed_loop"] = await closed_loop(
            urls,
            lambda index: order_body(Kind.NORMAL, 10**7 + index, catalog, args.lines, rng),
            concurrency=args.http_concurrency,
            seconds=args.http_seconds,
            authorization=credentials.customer if credentials else lambda customer_id: {},
        )
        result["ratios"] = ratios(result)
        return result


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    kafka = result["baselines"]["kafka_loop"]["messages_per_s"]
    bare = result["baselines"]["bare_http"]["requests_per_s"]
    out: dict[str, Any] = {
        "intake_to_bare_http": round(result["intake_closed_loop"]["requests_per_s"] / bare, 3)
    }
    for window in result["windows"]:
        completed, per_order = window["completed_per_s"], window["kafka_records_per_order"]
        out[f"at_{window['rate']:g}"] = {
            "completed_to_offered": round(completed / window["rate"], 3),
            "completed_to_kafka_loop": round(completed / kafka, 4),
            "kafka_records_to_kafka_loop": (
                round(completed * per_order / kafka, 3) if per_order else None
            ),
        }
    found = result.get("find_max", {}).get("max_rate")
    if found:
        out["find_max_to_kafka_loop"] = round(found / kafka, 4)
    return out


def _stores_at_start(report: dict[str, Any]) -> str:
    filled = report.get("prefill")
    if not filled:
        return "The read-side stores were empty at the start."
    stored = ", ".join(f"{name} {count:,}" for name, count in filled["stored"].items())
    return f"The read-side stores held {filled['orders']:,} orders at the start ({stored})."


def markdown(report: dict[str, Any]) -> str:
    base = report["baselines"]
    lines = [
        f"# Saga throughput, {report['at']}",
        "",
        f"`{report['command']}`",
        "",
        f"{report['workers']} workers, {report['partitions']} partitions, mix "
        f"`{report['mix']}`, {report['lines']} line(s) per order; machine: "
        f"{report['cpus']} cores, shared; fresh workers of a new deployment. "
        + _stores_at_start(report),
        "",
        "| offered/s | completed/s | completed/offered | p50 ms | p95 ms | p99 ms | max ms "
        "| pending | HTTP errors | Kafka records/order |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in report["windows"]:
        lat = w["latency_ms"]
        lines.append(
            f"| {w['rate']:g} | {w['completed_per_s']:g} | {w['completed_per_s'] / w['rate']:.2f} "
            f"| {lat['p50_ms']} | {lat['p95_ms']} | {lat['p99_ms']} | {lat['max_ms']} "
            f"| {w['pending']} | {sum(w['http_errors'].values())} "
            f"| {w['kafka_records_per_order']} |"
        )
    kafka, bare = base["kafka_loop"], base["bare_http"]
    intake = report["intake_closed_loop"]
    lines += [
        "",
        "## Baselines (same run)",
        "",
        f"- raw aiokafka consume -> transform -> produce loop: {kafka['messages_per_s']:g} "
        f"messages/s ({kafka['messages']} records of {kafka['record_bytes']} bytes)",
        f"- raw aiokafka hop (send -> read, {report['baselines']['kafka_hop']['rate']:g}/s): "
        f"p50 {report['baselines']['kafka_hop']['p50_ms']} ms, "
        f"p99 {report['baselines']['kafka_hop']['p99_ms']} ms",
        f"- bare aiohttp endpoints ({bare['servers']} processes, {bare['concurrency']} "
        f"concurrent requests): {bare['requests_per_s']:g} requests/s",
        f"- the intake (POST /api/v1/orders, same client): {intake['requests_per_s']:g} "
        f"requests/s = {report['ratios']['intake_to_bare_http']:.3f} x the bare endpoint",
        "",
        "| offered/s | completed / raw loop msgs/s | Kafka records/s / raw loop msgs/s |",
        "|---|---|---|",
    ]
    for w in report["windows"]:
        r = report["ratios"][f"at_{w['rate']:g}"]
        lines.append(
            f"| {w['rate']:g} | {r['completed_to_kafka_loop']} "
            f"| {r['kafka_records_to_kafka_loop']} |"
        )
    lines += ["", "## CPU seconds per 1,000 completed orders", ""]
    names = list(report["windows"][0]["cpu_s_per_1000_orders"])
    lines += ["| offered/s | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for w in report["windows"]:
        cpu = w["cpu_s_per_1000_orders"]
        lines.append(f"| {w['rate']:g} | " + " | ".join(f"{cpu[n]:g}" for n in names) + " |")
    lines += ["", "## Where a confirmed order's time goes (p50 / p99 ms per hop)", ""]
    hop_names = list(report["windows"][0]["hops_ms"])
    lines += ["| hop | " + " | ".join(f"{w['rate']:g}/s" for w in report["windows"]) + " |"]
    lines += ["|---" * (len(report["windows"]) + 1) + "|"]
    for hop in hop_names:
        cells = []
        for w in report["windows"]:
            h = w["hops_ms"].get(hop)
            cells.append(f"{h['p50_ms']} / {h['p99_ms']}" if h else "-")
        lines.append(f"| {hop} | " + " | ".join(cells) + " |")
    if "find_max" in report:
        found = report["find_max"]
        lines += [
            "",
            f"## find-max (p99 < {found['p99_bound_ms']:g} ms, >= "
            f"{found['min_completion']:.0%} completed in {found['window_s']:g} s windows)",
            "",
            f"Highest rate that held: **{found['max_rate']}** orders/s "
            f"(lowest that failed: {found['lowest_failing_rate']}).",
            "",
            "| rate | holds | why | completed/s | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for trial in found["trials"]:
            w = trial["report"]
            lines.append(
                f"| {trial['rate']:g} | {trial['holds']} | {trial['reason']} "
                f"| {w['completed_per_s']:g} | {w['latency_ms']['p99_ms']} |"
            )
    if "profile" in report:
        profile = report["profile"]
        summary = profile["summary"]
        lines += [
            "",
            f"## Profile: worker-0 under {profile['rate']:g} orders/s, {profile['seconds']} s "
            f"(py-spy, {summary['samples']} busy samples, {summary['idle_samples']} idle; "
            f"`{profile['raw']}`)",
            "",
            "Busy samples by thread: "
            + ", ".join(f"{t['name']} {t['percent']}%" for t in summary["by_thread"][:4]),
            "",
            "Own time by package: "
            + ", ".join(f"{p['name']} {p['percent']}%" for p in summary["own_by_package"][:12]),
            "",
            "| own % | function |",
            "|---|---|",
            *(f"| {f['percent']} | `{f['name']}` |" for f in summary["own"][:20]),
            "",
            "| total % | function |",
            "|---|---|",
            *(f"| {f['percent']} | `{f['name']}` |" for f in summary["total"][:25]),
        ]
    return "\n".join(lines) + "\n"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that the deployment is stopped and removed


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    args = parse_args()
    name = f"bench-{secrets.token_hex(3)}"
    var = Path("var") / name
    RESULTS.mkdir(exist_ok=True)
    with own_platform(
        name,
        workers=args.workers,
        web_port=args.web_port,
        gateway_port=args.gateway_port,
        var_dir=var.resolve(),
        partitions=args.partitions,
    ) as live:
        measured = asyncio.run(Bench(args, live).run())
    report = {
        "benchmark": "saga_throughput",
        "command": " ".join(["python", *sys.argv]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "partitions": args.partitions,
        "mix": args.mix,
        "lines": args.lines,
        "arguments": vars(args),
        **measured,
    }
    (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.output}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()

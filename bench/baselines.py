"""What the machine gives plain Python, measured beside the platform in the same run.

- ``kafka_loop``: a raw aiokafka consume -> transform -> produce loop over the same broker:
  records shaped like the saga's (a PlaceOrder's JSON) are read from one topic, decoded, given
  a field, encoded and produced to another, offsets committed per batch. Messages per second.
- ``bare_http``: as many bare aiohttp processes as the platform has workers, each answering
  ``POST /api/v1/orders`` with a 202 and an order id after reading the JSON body (no storage),
  driven by the load generator's own HTTP client in a closed loop. Requests per second.
- ``kafka_hop``: milliseconds from a raw producer's send to a raw consumer's read, at a low
  rate: the floor under each hop of the saga on this machine.
- ``closed_loop``: that client, usable against the platform's intake too, so the two figures
  make a ratio.

    .venv/bin/python bench/baselines.py [--messages 100000] [--seconds 5]

prints both figures as JSON; bench/saga_throughput.py runs them beside the load windows.
``python bench/baselines.py serve --port N`` is one bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orderflow import schemas
from orderflow.loadgen.runner import client_session
from orderflow.loadgen.stats import percentile

# -- the raw Kafka loop ---------------------------------------------------------------------


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create ``names`` and wait until every partition has a leader (a new topic's first
    sends would otherwise be retried on NotLeaderForPartition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, replication_factor=1) for n in names])
        async with asyncio.timeout(60):
            while True:
                described = await admin.describe_topics(names)
                led = [p for t in described if t["error_code"] == 0 for p in t["partitions"]
                       if p["leader"] >= 0]  # fmt: skip
                if len(led) == partitions * len(names):
                    return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def saga_like_record(index: int) -> bytes:
    order_id = uuid.uuid4().hex
    return bytes(
        schemas.PlaceOrder(
            **schemas.envelope(order_id),
            order_id=order_id,
            customer_id=f"customer-{index % 1000}",
            currency="USD",
            lines=[schemas.OrderLine(sku=f"SKU-{index % 100:04d}", quantity=1, unit_price=1000)],
            payment_token="tok_visa",
        ).dumps()
    )


async def kafka_loop(bootstrap: str, messages: int, partitions: int = 8) -> dict[str, Any]:
    """Messages per second of a consume -> transform -> produce loop (one process, one core)."""
    name = f"bench-baseline-{secrets.token_hex(3)}"
    source, sink = f"{name}.in", f"{name}.out"
    await create_topics(bootstrap, [source, sink], partitions)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            records = [saga_like_record(i) for i in range(1000)]
            for index in range(messages):
                await producer.send(source, records[index % 1000], key=str(index).encode())
            await producer.flush()
            started, done = await _consume_transform_produce(bootstrap, source, sink, messages)
        finally:
            await producer.stop()
    finally:
        await delete_topics(bootstrap, [source, sink])
    seconds = done - started
    return {
        "messages": messages,
        "record_bytes": len(records[0]),
        "seconds": round(seconds, 3),
        "messages_per_s": round(messages / seconds, 1),
    }


async def _consume_transform_produce(
    bootstrap: str, source: str, sink: str, messages: int
) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"{source}.group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        seen, started = 0, None
        while seen < messages:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            if started is None and batches:
                started = time.perf_counter()
            sent = []
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value or b"{}")
                    value["seen_by"] = "baseline"
                    sent.append(await producer.send(sink, orjson.dumps(value), key=record.key))
                    seen += 1
            await asyncio.gather(*sent)
            await consumer.commit()
        assert started is not None
        return started, time.perf_counter()
    finally:
        await consumer.stop()
        await producer.stop()


async def kafka_hop_latency(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """Milliseconds from a raw aiokafka producer's send to a raw consumer's read of the same
    record (one hop, no processing), at ``rate`` records per second: the floor of a saga hop."""
    topic = f"bench-baseline-hop-{secrets.token_hex(3)}"
    await create_topics(bootstrap, [topic], 8)
    try:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        await consumer.start()
        await producer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(8)]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:
                await consumer.position(partition)
            latencies: list[float] = []
            count = int(rate * seconds)

            async def read() -> None:
                while len(latencies) < count:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        now = time.perf_counter()
                        latencies.extend(now - float(r.value or b"0") for r in records)

            reader = asyncio.create_task(read())
            start = time.perf_counter()
            for index in range(count):
                await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
                await producer.send(topic, str(time.perf_counter()).encode(), key=b"%d" % index)
            await asyncio.wait_for(reader, timeout=30)
        finally:
            await consumer.stop()
            await producer.stop()
    finally:
        await delete_topics(bootstrap, [topic])
    ordered = sorted(latencies)
    return {
        "rate": rate,
        "records": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 1),
        "p99_ms": round(percentile(ordered, 99) * 1000, 1),
    }


# -- the bare HTTP endpoint -----------------------------------------------------------------


async def _accept(request: web.Request) -> web.Response:
    await request.json(loads=orjson.loads)
    order_id = uuid.uuid4().hex
    return web.Response(
        status=202,
        body=orjson.dumps({"order_id": order_id, "status": "PENDING"}),
        content_type="application/json",
        headers={"Location": f"/api/v1/orders/{order_id}"},
    )


def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/api/v1/orders", _accept)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def bare_servers(count: int) -> Iterator[list[str]]:
    """``count`` bare endpoint processes; yields their base URLs."""
    ports = [_free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "serve", "--port", str(port)], start_new_session=True
        )
        for port in ports
    ]
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the bare endpoint on port {port} did not start")
                time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


async def closed_loop(
    urls: list[str],
    body: Callable[[int], dict[str, Any]],
    *,
    concurrency: int,
    seconds: float,
    authorization: Callable[[str], dict[str, str]] = lambda customer_id: {},
) -> dict[str, Any]:
    """``concurrency`` senders POST orders back to back for ``seconds``, round-robin over
    ``urls``, with the load generator's client (each order with its customer's
    ``authorization`` header); requests per second that got a 202."""
    accepted = failed = 0
    counter = iter(range(10**9))
    async with client_session(max_in_flight=concurrency, http_timeout=30) as session:
        deadline = time.perf_counter() + seconds

        async def sender() -> None:
            nonlocal accepted, failed
            while time.perf_counter() < deadline:
                index = next(counter)
                url = f"{urls[index % len(urls)]}/api/v1/orders"
                order = body(index)
                headers = {
                    "Content-Type": "application/json",
                    **authorization(order["customer_id"]),
                }
                async with session.post(url, data=orjson.dumps(order), headers=headers) as r:
                    await r.read()
                    if r.status == 202:
                        accepted += 1
                    else:
                        failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "accepted": accepted,
        "failed": failed,
        "requests_per_s": round(accepted / elapsed, 1),
    }


def simple_order(index: int) -> dict[str, Any]:
    return {
        "customer_id": f"customer-{index % 1000}",
        "currency": "USD",
        "lines": [{"sku": f"SKU-{index % 100:04d}", "quantity": 1, "unit_price": 1000}],
        "payment": {"token": "tok_visa"},
    }


async def bare_http(servers: int, concurrency: int, seconds: float) -> dict[str, Any]:
    with bare_servers(servers) as urls:
        result = await closed_loop(urls, simple_order, concurrency=concurrency, seconds=seconds)
    return {"servers": servers, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("serve", help="run one bare endpoint")
    one.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port)
        return
    result = {
        "kafka_loop": asyncio.run(kafka_loop(args.bootstrap, args.messages)),
        "kafka_hop": asyncio.run(kafka_hop_latency(args.bootstrap, 50, args.seconds)),
        "bare_http": asyncio.run(bare_http(args.servers, args.concurrency, args.seconds)),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

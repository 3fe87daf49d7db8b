"""The faust-streaming release orderflow is built for, and the private parts of it orderflow uses.

orderflow subclasses Faust's consumer and producer buffer, overrides internals of ``faust.App``
and reads state that Faust keeps private (see orderflow.resilience). A release may rename or
change any of these without notice, and the failure would show only under a rebalance or a
crash. So the exact release is pinned (pyproject.toml), and :func:`ensure_compatible`, called
when the app is created, refuses to go on with another release or with any of these names
missing, and says which.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import faust
from aiohttp import web as aiohttp_web
from aiohttp.web_protocol import RequestHandler
from aiokafka import AIOKafkaConsumer
from faust import streams as faust_streams
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport import conductor as faust_conductor
from faust.transport import consumer as faust_consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.transport.producer import ProducerBuffer
from faust.types import tuples
from faust.web.drivers import aiohttp as faust_aiohttp

from orderflow.errors import OrderflowError

FAUST_RELEASE = "0.15.3"

# Methods and attributes orderflow overrides or calls, by the class that has them.
MEMBERS: dict[type, tuple[str, ...]] = {
    faust.App: (
        "_new_consumer",
        "_new_producer",
        "_consumer_wait_empty",
        "_on_partitions_revoked",
        "_on_partitions_assigned",
        "on_first_start",
        "consumer_generation_id",
    ),
    Consumer: (
        "perform_seek",
        "getmany",
        "seek_wait",
        "verify_event_path",
        "_add_gap",
        "ack",
        "_new_offset",
        "_drain_messages",
        "commit",
        "_commit",
    ),
    AIOKafkaConsumerThread: (
        "_ensure_consumer",
        "call_thread",
        "_seek_wait",
        "_create_worker_consumer",
    ),
    Recovery: ("_seek_offsets", "_build_offsets"),
    ProducerBuffer: (
        "__post_init__",
        "put",
        "flush",
        "_send_pending",
        "size",
        "max_messages",
        "wait_until_ebb",
    ),
    faust_streams.Stream: ("noack_take", "ack"),
    TableManager: ("recovery", "changelog_topics"),
    # The web server's answers to requests aiohttp's parser refuses (orderflow.views.server).
    aiohttp_web.AppRunner: ("_make_server",),
    RequestHandler: ("handle_error",),
}
# State a Faust consumer keeps in attributes its constructor sets, which orderflow reads and
# resets on a seek (orderflow.resilience.seeks).
CONSUMER_STATE = (
    "_gap",
    "_acked",
    "_acked_index",
    "_read_offset",
    "_committed_offset",
    "_unacked_messages",
    "_commit_every",
    "suspend_flow",
)
# What aiokafka's consumer keeps from its constructor until start() builds its fetcher, which
# the worker's consumer sets (orderflow.app.WorkerConsumer).
AIOKAFKA_CONSUMER_STATE = ("_fetch_min_bytes", "_fetch_max_wait_ms")
# The conductor's index of the streams' topics by partition, which the worker's consumer reads to
# know whether a message's queues have room (orderflow.consumer).
CONDUCTOR_STATE = ("_tp_index",)
# The runner Faust's aiohttp driver serves its app with, which orderflow.views.server replaces.
WEB_STATE = ("_runner",)
# Module-level names.
MODULE_NAMES: dict[object, tuple[str, ...]] = {
    tuples: ("ack_lock",),
    faust_streams: ("_current_event",),  # which event's partition a table write goes to
    faust_consumer: ("CONSUMER_FETCHING",),
}


class IncompatibleFaust(OrderflowError):
    """The installed faust-streaming is not the release orderflow was built and tested for."""


def _installed() -> str:
    try:
        return version("faust-streaming")
    except PackageNotFoundError:
        return "none"


def problems(installed: Callable[[], str] = _installed) -> list[str]:
    """What differs from the release orderflow relies on; empty when nothing does."""
    found = []
    release = installed()
    if release != FAUST_RELEASE:
        found.append(f"faust-streaming {release} is installed; orderflow needs {FAUST_RELEASE}")
    for owner, names in MEMBERS.items():
        found += [
            f"{owner.__module__}.{owner.__qualname__}.{name} is gone"
            for name in names
            if not hasattr(owner, name)
        ]
    for module, names in MODULE_NAMES.items():
        found += [f"{module}.{name} is gone" for name in names if not hasattr(module, name)]
    client = inspect.getsource(AIOKafkaConsumer.__init__)
    found += [
        f"aiokafka's consumer no longer keeps {name}"
        for name in AIOKAFKA_CONSUMER_STATE
        if f"self.{name} =" not in client
    ]
    constructor = inspect.getsource(faust_consumer.Consumer.__init__)
    found += [
        f"faust's Consumer no longer sets {name}"
        for name in CONSUMER_STATE
        if f"self.{name} =" not in constructor
    ]
    conductor = inspect.getsource(faust_conductor.Conductor.__init__)
    found += [
        f"faust's Conductor no longer sets {name}"
        for name in CONDUCTOR_STATE
        if f"self.{name} =" not in conductor
    ]
    web = inspect.getsource(faust_aiohttp.Web.__init__)
    found += [
        f"faust's aiohttp web driver no longer sets {name}"
        for name in WEB_STATE
        if f"self.{name}: AppRunner =" not in web and f"self.{name} =" not in web
    ]
    return found


def ensure_compatible() -> None:
    found = problems()
    if found:
        raise IncompatibleFaust(
            "this faust-streaming is not the one orderflow relies on: "
            + "; ".join(found)
            + f" (install faust-streaming=={FAUST_RELEASE})"
        )

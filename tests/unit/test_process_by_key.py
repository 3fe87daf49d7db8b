"""process_by_key: one key's messages in order, different keys' at the same time, each handled
as Faust's current event, acknowledged only when the whole batch is done."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.streams import current_event

from orderflow import schemas
from orderflow.app import create_app
from orderflow.resilience.handling import arrived, process_by_key
from orderflow.settings import Settings

app = create_app(Settings(store="memory://"), platform=False)
commands = app.topic("process-by-key", key_type=str, value_type=bytes, value_serializer="raw")

started: list[tuple[str, str]] = []
finished: list[tuple[str, str]] = []
running = 0
most_running = 0
events_seen: list[tuple[str, Any]] = []


async def slow_handler(message: schemas.Message, event: Any) -> None:
    global running, most_running
    order_id = message.order_id
    started.append((order_id, message.reason))
    current = current_event()
    assert current is not None
    events_seen.append((message.reason, current.message.key))
    running += 1
    most_running = max(most_running, running)
    await asyncio.sleep(0.05)  # a gateway call
    running -= 1
    finished.append((order_id, message.reason))


@app.agent(commands)
async def by_key(stream: faust.StreamT[bytes]) -> None:
    await process_by_key(app, stream, slow_handler, "by-key-test")


def cancel(order_id: str, step: int) -> schemas.CancelOrder:
    return schemas.CancelOrder(
        **schemas.envelope(order_id), order_id=order_id, reason=f"{order_id}:{step}"
    )


async def test_keys_overlap_and_each_keys_messages_stay_in_order() -> None:
    app.finalize()
    app.flow_control.resume()
    sent = [cancel(f"o-{n % 4}", n // 4) for n in range(12)]  # 4 keys, 3 messages each
    async with by_key.test_context() as agent:
        for message in sent:
            # All of them wait in the agent's queue, as after a burst: taken together.
            await agent.put(message.dumps(), key=message.order_id, wait=False)
        async with asyncio.timeout(10):
            while len(finished) < len(sent):  # noqa: ASYNC110 (the handler's own record)
                await asyncio.sleep(0.01)

    for key in range(4):
        order_id = f"o-{key}"
        mine = [reason for o, reason in finished if o == order_id]
        assert mine == [f"{order_id}:{step}" for step in range(3)]
    assert most_running > 1  # different keys' calls overlapped
    assert most_running <= 4  # never two of one key
    # Each message was handled as the current event (its key, not another message's).
    assert [(r, k) for r, k in events_seen if k != r.split(":")[0]] == []


async def test_a_lone_message_is_taken_at_once_and_queued_ones_together() -> None:
    app.flow_control.resume()
    channel = app.channel(value_type=bytes)
    batches = arrived(app.stream(channel), 3)
    for n in range(5):  # a burst, queued before the agent looks
        await channel.send(value=b"%d" % n)
    async with asyncio.timeout(1):
        assert [event.value for event in await anext(batches)] == [b"0", b"1", b"2"]  # at most 3
        assert [event.value for event in await anext(batches)] == [b"3", b"4"]
        # Nothing waits: the next message is taken as soon as it comes, with no window to fill.
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await channel.send(value=b"5")
        assert [event.value for event in await waiting] == [b"5"]
    await batches.aclose()

"""The webhook notification channel against a real HTTP server."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from orderflow.domain.notifications import Notification
from orderflow.notifications.channels import ChannelRefused, ChannelUnavailable, WebhookChannel
from tests.support.webhook import WebhookReceiver
from tests.support.workers import free_port

pytestmark = pytest.mark.integration

NOTIFICATION = Notification(
    id="o-1/order_confirmed",
    kind="order_confirmed",
    order_id="o-1",
    customer_id="c-1",
    subject="Order o-1 is confirmed",
    body="Your order o-1 is confirmed and paid (pay-1).",
)


async def test_a_notification_is_posted_as_json_with_its_id_as_idempotency_key() -> None:
    async with (
        WebhookReceiver() as receiver,
        WebhookChannel(receiver.url, timeout=2) as channel,
    ):
        await channel.send(NOTIFICATION)
    assert receiver.received == [("o-1/order_confirmed", NOTIFICATION.payload())]


@pytest.mark.parametrize(("status", "error"), [(503, ChannelUnavailable), (429, ChannelUnavailable),
                                               (400, ChannelRefused)])  # fmt: skip
async def test_the_answer_decides_whether_to_retry(status: int, error: type[Exception]) -> None:
    async with WebhookReceiver() as receiver:
        receiver.status = status
        async with WebhookChannel(receiver.url, timeout=2) as channel:
            with pytest.raises(error):
                await channel.send(NOTIFICATION)


async def test_nobody_listening_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/notifications"
    async with WebhookChannel(url, timeout=2) as channel:
        with pytest.raises(ChannelUnavailable):
            await channel.send(NOTIFICATION)


async def test_no_answer_in_time_is_unavailable() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/notifications", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    channel = WebhookChannel(f"http://127.0.0.1:{port}/notifications", timeout=0.2)
    try:
        with pytest.raises(ChannelUnavailable):
            await channel.send(NOTIFICATION)
    finally:
        await channel.close()
        await runner.cleanup()

"""A real HTTP endpoint that records what is POSTed to it (the notification channel's peer)."""

from __future__ import annotations

from typing import Any, Self

from aiohttp import web

from tests.support.workers import free_port


class WebhookReceiver:
    """An aiohttp server on 127.0.0.1 that keeps every POSTed JSON body with its
    Idempotency-Key, and answers ``status`` (200 unless told otherwise)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/notifications"
        self.received: list[tuple[str | None, Any]] = []
        self.status = 200
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Idempotency-Key"), await request.json()))
        return web.json_response({"ok": self.status < 300}, status=self.status)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/notifications", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

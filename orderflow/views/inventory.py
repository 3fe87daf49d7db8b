"""Inventory: read a sku's stock; adjust it (restock, write-off)."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.web import Request, Response

from orderflow import schemas, tables, topics
from orderflow.app import app
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response, read_json

MAX_DELTA = 1_000_000


async def produce(topic: Any, key: str, record: schemas.Message) -> None:
    """Produce and wait for the broker's acknowledgement before answering the client."""
    try:
        pending = await topic.send(key=key, value=record.dumps())
        await asyncio.wait_for(asyncio.ensure_future(pending), timeout=10)
    except Exception as error:
        raise Problem(503, f"the command could not be written to Kafka: {error}") from None


@app.page("/api/v1/inventory/{sku}")
class Stock(ApiView):
    async def get(self, request: Request, sku: str) -> Response:
        async def answer() -> Response:
            level = tables.stock.get(sku)
            if level is None:
                raise Problem(404, f"no stock has ever been recorded for sku {sku}")
            return json_response(
                self,
                {
                    "sku": sku,
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                    "available": level.available,
                },
            )

        return await self.routed(request, tables.stock, sku, answer)


@app.page("/api/v1/inventory/{sku}/adjustments")
class StockAdjustments(ApiView):
    async def post(self, request: Request, sku: str) -> Response:
        body = await read_json(self, request)
        if not isinstance(body, dict):
            raise Problem(422, "the body must be an object with delta and reason")
        delta, reason = body.get("delta"), body.get("reason")
        errors = []
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
            errors.append({"field": "delta", "message": "required, a non-zero integer"})
        elif abs(delta) > MAX_DELTA:
            errors.append({"field": "delta", "message": f"at most {MAX_DELTA} either way"})
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
            errors.append({"field": "reason", "message": "required, at most 200 characters"})
        if not sku.strip() or len(sku) > 100:
            errors.append({"field": "sku", "message": "at most 100 characters"})
        if errors:
            raise Problem(422, "the adjustment is invalid", errors=errors)
        assert isinstance(delta, int)
        assert isinstance(reason, str)
        adjust = schemas.AdjustStock(**schemas.envelope(sku), sku=sku, delta=delta, reason=reason)
        await produce(topics.inventory_commands, sku, adjust)
        return json_response(
            self,
            {"sku": sku, "delta": delta, "status": "ACCEPTED"},
            status=202,
            Location=f"/api/v1/inventory/{sku}",
        )

"""Inventory: read a sku's stock; adjust it (restock, write-off)."""

from __future__ import annotations

import orjson
from faust.web import Request, Response

from orderflow import intake, schemas, topics
from orderflow.domain import orders
from orderflow.views.access import ADMIN, ANY_ROLE, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.commands import accept_command
from orderflow.views.problems import Problem, json_response, read_json

MAX_DELTA = 1_000_000
MAX_REASON_LENGTH = 200
REASON_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_REASON_LENGTH, "pattern": r"\S"}
ADJUSTMENT_SCHEMA = {
    "type": "object",
    "required": ["delta", "reason"],
    "properties": {
        "delta": {
            "type": "integer",
            "minimum": -MAX_DELTA,
            "maximum": MAX_DELTA,
            "not": {"const": 0},
        },
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REASON_LENGTH,
            "pattern": r"\S",
        },
    },
}


class Stock(ApiView):
    operations = serves(get=Operation("A sku's stock", ANY_ROLE, "reads", errors=(404, 503)))

    async def get(self, request: Request, sku: str) -> Response:
        async def answer() -> Response:
            level = self.platform.data.stock_level(sku)
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

        return await self.routed(request, self.platform.data.inventory, sku, answer)


class StockAdjustments(ApiView):
    operations = serves(
        post=Operation(
            "Adjust a sku's stock (restock, write-off)",
            ADMIN,
            "admin",
            body=lambda: ADJUSTMENT_SCHEMA,
            status=202,
            errors=(400, 409, 413, 415, 422, 503),
        )
    )

    async def post(self, request: Request, sku: str) -> Response:
        body = await read_json(self, request)
        if not isinstance(body, dict):
            raise Problem(422, "the body must be an object with delta and reason")
        delta, reason = orders.whole_number(body.get("delta")), body.get("reason")
        errors = []
        if delta is None or delta == 0:
            errors.append({"field": "delta", "message": "required, a non-zero integer"})
        elif abs(delta) > MAX_DELTA:
            errors.append({"field": "delta", "message": f"at most {MAX_DELTA} either way"})
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            message = f"required, at most {MAX_REASON_LENGTH} characters"
            errors.append({"field": "reason", "message": message})
        if sku_problem := orders.sku_problem(sku):
            errors.append({"field": "sku", "message": sku_problem})
        if errors:
            raise Problem(422, "the adjustment is invalid", errors=errors)
        assert isinstance(delta, int)
        assert isinstance(reason, str)
        adjust = schemas.AdjustStock(**schemas.envelope(sku), sku=sku, delta=delta, reason=reason)
        answer = intake.Answer(
            202,
            orjson.dumps({"sku": sku, "delta": delta, "status": "ACCEPTED"}),
            {"Location": f"/api/v1/inventory/{sku}"},
        )
        return await accept_command(
            self,
            request,
            record=adjust,
            topic=topics.INVENTORY_COMMANDS,
            key=sku,
            aggregate_id=f"sku/{sku}",
            scope="inventory-admin",
            body=body,
            answer=answer,
        )


ROUTES = {
    "/api/v1/inventory/{sku}": Stock,
    "/api/v1/inventory/{sku}/adjustments": StockAdjustments,
}

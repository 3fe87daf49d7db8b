"""A saga's state and step history, for operators."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response

from orderflow.domain.saga import SagaState
from orderflow.views.access import ADMIN, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response


def saga_document(state: SagaState) -> dict[str, Any]:
    """Everything an operator needs, and not the payment token."""
    return {
        "order_id": state.order_id,
        "customer_id": state.order.customer_id,
        "status": state.status.value,
        "order_status": state.status.order_status,
        "awaiting_skus": sorted(state.awaiting),
        "deadline": state.deadline,
        "version": state.version,
        "payment_id": state.payment_id,
        "reason": state.reason,
        "detail": state.detail,
        "total": state.order.total,
        "currency": state.order.currency,
        "lines": [
            {"sku": li.sku, "quantity": li.quantity, "unit_price": li.unit_price}
            for li in state.lines
        ],
        "steps": [{"at": t.at, "status": t.status.value, "cause": t.cause} for t in state.history],
        "messages_applied": len(state.seen),
    }


class Saga(ApiView):
    operations = serves(
        get=Operation("A saga's state and steps", ADMIN, "admin", errors=(404, 503))
    )

    async def get(self, request: Request, order_id: str) -> Response:
        async def answer() -> Response:
            state = self.platform.data.sagas.get(order_id)
            if state is None:
                raise Problem(404, f"no saga for order {order_id}")
            return json_response(self, saga_document(state))

        return await self.routed(request, self.platform.data.sagas, order_id, answer)


ROUTES = {
    "/api/v1/sagas/{order_id}": Saga,
}

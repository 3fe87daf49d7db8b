"""Orders: place, read (with long-poll), cancel; the notifications sent; a customer's orders.

Placing and cancelling go through the intake (orderflow.intake): the command is stored in
PostgreSQL with its outbox row and its Idempotency-Key record before the client hears 202.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
from faust.web import Request, Response

from orderflow import intake, schemas, topics
from orderflow.auth.principal import Principal
from orderflow.db import DatabaseUnavailable
from orderflow.domain import order_document
from orderflow.domain.order_document import OrderDocument, OrderStatus
from orderflow.domain.orders import InvalidOrder, new_order_schema, parse_new_order
from orderflow.projections import search
from orderflow.views.access import ANY_ROLE, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.commands import accept_command
from orderflow.views.problems import Problem, json_response, read_json
from orderflow.views.search import run_search

MAX_WAIT_SECONDS = 30.0
MAX_REASON_LENGTH = 200
# A customer's list: its newest orders in the search index, with the fields a list shows.
CUSTOMER_LIST_SIZE = 100
LIST_FIELDS = ("order_id", "status", "total", "currency", "placed_at", "updated_at", "version")
REASON_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_REASON_LENGTH, "pattern": r"\S"}
WAIT_PARAMETER = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
}
CANCEL_SCHEMA = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REASON_LENGTH,
            "pattern": r"\S",
        }
    },
}


def _wait_seconds(request: Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise Problem(400, f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}")
    return wait


def not_found(order_id: str) -> Problem:
    """The answer for an order that does not exist, and for another customer's order alike:
    a customer cannot tell one from the other, so order ids cannot be probed."""
    return Problem(404, f"no order {order_id}")


def visible(principal: Principal, document: OrderDocument) -> bool:
    return principal.may_act_for(document["customer_id"])


async def accepted_document(view: ApiView, order_id: str, principal: Principal) -> OrderDocument:
    """An order accepted by the intake that the saga has not published yet: PENDING.
    Only the order's customer (or a service or admin) gets it; anyone else a 404."""
    platform = view.platform
    try:
        accepted = await intake.intake_of(
            await platform.database.pool(), order_id, platform.settings.database_timeout
        )
    except DatabaseUnavailable:
        accepted = None
    if accepted is None or not principal.may_act_for(accepted["customer_id"]):
        raise not_found(order_id)
    received_at = accepted["received_at"]
    return order_document.pending(
        order_id, accepted["customer_id"], accepted["currency"], accepted["lines"], received_at
    )


WRITE_ERRORS = (400, 403, 409, 413, 415, 422, 503)


class Orders(ApiView):
    operations = serves(
        post=Operation(
            "Place an order (a customer for itself: customer_id is the token's subject)",
            ANY_ROLE,
            "writes",
            body=new_order_schema,
            status=202,
            errors=WRITE_ERRORS,
        )
    )

    async def post(self, request: Request) -> Response:
        principal = self.caller(request)
        body = await read_json(self, request)
        if isinstance(body, dict) and not principal.for_any_customer:
            given = body.get("customer_id")
            if given is None:
                body = {**body, "customer_id": principal.subject}
            elif given != principal.subject:
                raise Problem(403, "a customer places its own orders: customer_id must be yours")
        try:
            order = parse_new_order(body)
        except InvalidOrder as invalid:
            errors = [{"field": e.field, "message": e.message} for e in invalid.errors]
            raise Problem(422, f"the order is invalid: {invalid}", errors=errors) from None
        if (refusal := self.platform.admission.refusal()) is not None:
            raise Problem(
                503,
                f"new orders are not taken right now: {refusal.reason}; retry later",
                headers={"Retry-After": str(refusal.retry_after)},
            )
        order_id = uuid.uuid4().hex
        place = schemas.PlaceOrder(
            **schemas.envelope(order_id),
            order_id=order_id,
            customer_id=order.customer_id,
            currency=order.currency,
            lines=[
                schemas.OrderLine(sku=li.sku, quantity=li.quantity, unit_price=li.unit_price)
                for li in order.lines
            ],
            payment_token=order.payment_token,
        )
        location = f"/api/v1/orders/{order_id}"
        accepted = {"order_id": order_id, "status": OrderStatus.PENDING}
        answer = intake.Answer(202, orjson.dumps(accepted), {"Location": location})
        row = intake.IntakeRow(order_id, order.customer_id, orjson.dumps(body))
        return await accept_command(
            self,
            request,
            record=place,
            topic=topics.ORDERS_COMMANDS,
            key=order_id,
            aggregate_id=order_id,
            scope=order.customer_id,
            body=body,
            answer=answer,
            row=row,
        )


# "search" is the search view (orderflow.views.search), never an order id.
class Order(ApiView):
    operations = serves(
        get=Operation(
            "Read an order (?wait= long-polls while it is PENDING)",
            ANY_ROLE,
            "reads",
            query=lambda: [WAIT_PARAMETER],
            errors=(400, 404, 503),
        )
    )

    async def get(self, request: Request, order_id: str) -> Response:
        wait = _wait_seconds(request)
        principal = self.caller(request)
        orders = self.platform.data.orders_view

        async def answer() -> Response:
            deadline = time.monotonic() + wait
            delay = 0.01
            while True:
                view = orders.get(order_id)
                if view is not None and not visible(principal, view):
                    view = None  # another customer's order looks exactly like no order
                if view is not None and (view["status"] != OrderStatus.PENDING or not wait):
                    return json_response(self, order_document.public(view))
                if time.monotonic() >= deadline:
                    if view is None:
                        document = await accepted_document(self, order_id, principal)
                        return json_response(self, document)
                    return json_response(self, order_document.public(view))
                await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                delay = min(delay * 2, 0.2)

        return await self.routed(request, orders, order_id, answer)


class CancelOrder(ApiView):
    operations = serves(
        post=Operation(
            "Cancel an order (a confirmed one is voided and its stock released)",
            ANY_ROLE,
            "writes",
            body=lambda: CANCEL_SCHEMA,
            body_required=False,
            status=202,
            errors=(*WRITE_ERRORS, 404),
        )
    )

    async def post(self, request: Request, order_id: str) -> Response:
        principal = self.caller(request)
        body = await read_json(self, request, required=False)
        reason = body.get("reason", "customer_request") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            raise Problem(
                422, f"reason must be a non-empty string of at most {MAX_REASON_LENGTH} characters"
            )
        orders = self.platform.data.orders_view

        async def cancel() -> Response:
            # An order exists from its 202 on (it is in PostgreSQL): the read model may not
            # have seen it yet, and the saga reads the cancel after the order (the outbox
            # publishes an order's commands in the order they were accepted).
            view = orders.get(order_id) or await accepted_document(self, order_id, principal)
            if not visible(principal, view):
                raise not_found(order_id)
            if OrderStatus(view["status"]).closed:
                raise Problem(409, f"order {order_id} is already {view['status']}")
            command = schemas.CancelOrder(
                **schemas.envelope(order_id), order_id=order_id, reason=reason
            )
            document = {"order_id": order_id, "status": view["status"], "cancellation": "accepted"}
            answer = intake.Answer(
                202, orjson.dumps(document), {"Location": f"/api/v1/orders/{order_id}"}
            )
            return await accept_command(
                self,
                request,
                record=command,
                topic=topics.ORDERS_COMMANDS,
                key=order_id,
                aggregate_id=order_id,
                scope=view["customer_id"],
                body=body,
                answer=answer,
            )

        return await self.routed(request, orders, order_id, cancel)


class CustomerOrders(ApiView):
    operations = serves(
        get=Operation(
            "A customer's most recent orders (a customer reads its own list only)",
            ANY_ROLE,
            "reads",
            errors=(404, 503),
        )
    )

    async def get(self, request: Request, customer_id: str) -> Response:
        principal = self.caller(request)
        if not principal.may_act_for(customer_id):
            raise Problem(404, f"no orders of customer {customer_id}")
        newest = {"sort": "newest", "size": str(CUSTOMER_LIST_SIZE)}

        def build(_: object) -> search.Search:
            return search.order_search(newest, only_customer=customer_id)

        _, answer = await run_search(self, "orders-search", request, build)
        _, found = search.hits(answer)
        orders = [{field: order.get(field) for field in LIST_FIELDS} for order in found]
        return json_response(self, {"customer_id": customer_id, "orders": orders})


class OrderNotifications(ApiView):
    operations = serves(
        get=Operation(
            "What the order's customer was told, and through which channel",
            ANY_ROLE,
            "reads",
            errors=(404, 503),
        )
    )

    async def get(self, request: Request, order_id: str) -> Response:
        principal = self.caller(request)

        async def answer() -> Response:
            view = self.platform.data.orders_view.get(order_id)
            if view is None:
                # A 404 problem unless the intake has it (and it is the caller's).
                await accepted_document(self, order_id, principal)
            elif not visible(principal, view):
                raise not_found(order_id)
            sent = self.platform.data.notifications.get(order_id)
            return json_response(self, {"order_id": order_id, "notifications": sent or []})

        return await self.routed(request, self.platform.data.notifications, order_id, answer)


ROUTES = {
    "/api/v1/orders": Orders,
    "/api/v1/orders/{order_id:(?!search$)[^/]+}": Order,
    "/api/v1/orders/{order_id}/cancel": CancelOrder,
    "/api/v1/customers/{customer_id}/orders": CustomerOrders,
    "/api/v1/orders/{order_id}/notifications": OrderNotifications,
}

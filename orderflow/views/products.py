"""The product catalog: change a product (through the intake), read its document (MongoDB)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from faust.web import Request, Response

from orderflow import intake, schemas, topics
from orderflow.domain.catalog import InvalidProduct, parse_product, product_schema
from orderflow.projections import PROJECTIONS
from orderflow.projections.stores import StoreUnavailable
from orderflow.views.access import ADMIN, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.commands import accept_command
from orderflow.views.problems import Problem, json_response, read_json

log = logging.getLogger(__name__)


def public(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("_id", "deleted")}


# "search" is the search view (orderflow.views.search), never a product id.
class Product(ApiView):
    operations = serves(
        get=Operation("A product's document, with its stock", None, "public", errors=(404, 503)),
        put=Operation(
            "Create or replace a product",
            ADMIN,
            "admin",
            body=product_schema,
            status=202,
            errors=(400, 409, 413, 415, 422, 503),
        ),
        delete=Operation(
            "Delete a product", ADMIN, "admin", status=202, errors=(400, 409, 422, 503)
        ),
    )

    async def get(self, request: Request, product_id: str) -> Response:
        try:
            store = self.platform.read_side.store(PROJECTIONS["products-documents"])
            document = await store.get(product_id)
        except StoreUnavailable as error:
            log.warning("reading product %s failed: %s", product_id, error)
            raise Problem(503, "product documents are unavailable right now; retry") from None
        if document is None or document.get("deleted"):
            gone = "was deleted" if document else "is not in the catalog"
            raise Problem(404, f"product {product_id} {gone}")
        return json_response(self, public(document))

    async def put(self, request: Request, product_id: str) -> Response:
        body = await read_json(self, request)
        try:
            product = parse_product(product_id, body)
        except InvalidProduct as invalid:
            errors = [{"field": e.field, "message": e.message} for e in invalid.errors]
            raise Problem(422, f"the product is invalid: {invalid}", errors=errors) from None
        command = schemas.UpsertProduct(
            **schemas.envelope(product_id), product_id=product_id, **product
        )
        return await self._accept(request, command, product_id, body)

    async def delete(self, request: Request, product_id: str) -> Response:
        command = schemas.DeleteProduct(**schemas.envelope(product_id), product_id=product_id)
        return await self._accept(request, command, product_id, {})

    async def _accept(
        self, request: Request, command: schemas.Message, product_id: str, body: Any
    ) -> Response:
        answer = intake.Answer(
            202,
            orjson.dumps({"product_id": product_id, "status": "ACCEPTED"}),
            {"Location": f"/api/v1/products/{product_id}"},
        )
        return await accept_command(
            self,
            request,
            record=command,
            topic=topics.CATALOG_COMMANDS,
            key=product_id,
            aggregate_id=f"product/{product_id}",
            scope="catalog-admin",
            body=body,
            answer=answer,
        )


ROUTES = {
    "/api/v1/products/{product_id:(?!search$)[^/]+}": Product,
}

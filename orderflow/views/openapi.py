"""``/openapi.json``: the API described from the operations the views declare.

Paths come from each module's ROUTES, methods and access from each view's operations, request
bodies and query parameters from the describers that sit beside the parsers the views run
(orderflow.domain.orders.new_order_schema, orderflow.domain.catalog.product_schema,
orderflow.projections.search.parameters), and errors from the statuses each operation
declares. Nothing here restates a rule a parser checks.
"""

from __future__ import annotations

import re
from typing import Any

from faust.web import Request, Response, View

from orderflow.views.access import Operation
from orderflow.views.base import ApiView
from orderflow.views.parameters import parameter
from orderflow.views.problems import json_response

OPENAPI_VERSION = "3.1.0"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
_PARAMETER = re.compile(r"\{(\w+)(?::[^{}]*(?:\{[^{}]*\}[^{}]*)*)?\}")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

RATE_LIMIT_HEADERS = {
    "RateLimit": {
        "description": 'What is left of the client\'s quota: "class";r=REMAINING;t=SECONDS',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The quota: "class";q=REQUESTS;w=SECONDS',
        "schema": {"type": "string"},
    },
}

# What any operation may answer besides what it declares.
COMMON_ERRORS = (404, 405, 500)


def openapi_path(pattern: str) -> tuple[str, list[str]]:
    """An aiohttp route pattern as an OpenAPI path, and its parameter names."""
    names = _PARAMETER.findall(pattern)
    return _PARAMETER.sub(lambda match: "{" + match[1] + "}", pattern), names


def _path_parameter(name: str, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    schema = schemas.get(name, parameter(name).schema)
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _responses(operation: Operation, path_parameters: bool) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": "success",
        "content": {"application/json": {"schema": operation.response() if operation.response
                                          else {"type": "object"}}},
    }  # fmt: skip
    errors = set(operation.errors) | set(COMMON_ERRORS)
    if path_parameters:
        errors.add(400)  # a path parameter that breaks its rule (orderflow.views.parameters)
    if operation.roles is not None:
        errors |= {401, 403}
    else:
        errors.add(401)  # a token sent to a public operation is checked too
    if operation.limit is not None:
        errors.add(429)
        success["headers"] = RATE_LIMIT_HEADERS
    responses: dict[str, Any] = {str(operation.status): success}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": "problem",
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
    return responses


def describe(
    routes: dict[str, type[ApiView]], path_schemas: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (path pattern to view class)."""
    paths: dict[str, Any] = {}
    for pattern, view in routes.items():
        path, names = openapi_path(pattern)
        item: dict[str, Any] = {}
        for method, operation in view.operations.items():
            described: dict[str, Any] = {
                "operationId": f"{view.__name__}.{method}",
                "summary": operation.summary,
                "parameters": [_path_parameter(n, path_schemas) for n in names] + operation.query(),
                "responses": _responses(operation, bool(names)),
                "security": [{"bearer": []}] if operation.roles is not None else [{}],
            }
            if operation.roles is not None:
                roles = ", ".join(sorted(operation.roles))
                described["description"] = f"Roles: {roles}. Rate-limit class: {operation.limit}."
            if operation.body is not None:
                described["requestBody"] = {
                    "required": operation.body_required,
                    "content": {"application/json": {"schema": operation.body()}},
                }
            item[method] = described
        paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "orderflow",
            "version": "1",
            "description": "Orders, stock, catalog and operations of an orderflow platform. "
            "Errors are application/problem+json (RFC 9457).",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "roles claim: customer (sub is the customer id), service, admin",
                }
            },
        },
    }


class OpenApi(View):
    async def get(self, request: Request) -> Response:
        from orderflow.views import api_routes, path_schemas

        return json_response(self, describe(api_routes(), path_schemas()))


ROUTES = {"/openapi.json": OpenApi}

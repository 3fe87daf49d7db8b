"""Errors as ``application/problem+json`` (RFC 9457), and reading JSON bodies safely."""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import Request, Response, View

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}

MAX_BODY_BYTES = 1 << 20


class Problem(Exception):
    """Raised by a view to answer with a problem document."""

    def __init__(
        self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(view: View, problem: Problem, instance: str) -> Response:
    document = {
        "type": "about:blank",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        **problem.extensions,
    }
    return view.bytes(
        orjson.dumps(document),
        content_type=PROBLEM_JSON,
        status=problem.status,
        headers=problem.headers or None,
    )


async def read_json(view: View, request: Request, *, required: bool = True) -> Any:
    """The request body decoded as JSON, or a Problem that says what is wrong with it."""
    body = await view.read_request_content(request)
    if len(body) > MAX_BODY_BYTES:
        raise Problem(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        if required:
            raise Problem(400, "the body is empty; send a JSON object")
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"the body is not valid JSON: {error}") from None


def json_bytes_response(
    view: View, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return view.bytes(body, content_type="application/json", status=status, headers=headers or None)


def json_response(view: View, value: Any, status: int = 200, **headers: str) -> Response:
    return view.bytes(
        orjson.dumps(value), content_type="application/json", status=status, headers=headers or None
    )

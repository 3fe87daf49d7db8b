"""Errors as ``application/problem+json`` (RFC 9457), and reading JSON bodies safely."""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import Request, Response, View

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Bounds on every JSON body, whatever the operation (each parser bounds its own fields more
# tightly): nesting depth, items of one array or object, characters of one string.
MAX_JSON_DEPTH = 8
MAX_JSON_ITEMS = 1000
MAX_JSON_STRING = 10_000
JSON_TYPES = ("application/json",)


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


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON: application/json or application/*+json."""
    media = content_type.partition(";")[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


async def read_json(view: View, request: Request, *, required: bool = True) -> Any:
    """The request body decoded as JSON, or a Problem that says what is wrong with it.

    The body's size is bounded by the view's reader (413); a body must be declared JSON (415),
    and may nest at most MAX_JSON_DEPTH levels, hold at most MAX_JSON_ITEMS items in one array
    or object, and MAX_JSON_STRING characters in one string (422).
    """
    body = await view.read_request_content(request)
    if not body.strip():
        if required:
            raise Problem(400, "the body is empty; send a JSON object")
        return {}
    if not is_json(request.headers.get("Content-Type", "")):
        raise Problem(
            415,
            "the body must be JSON, sent with Content-Type: application/json",
            headers={"Accept-Post": "application/json"},
        )
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"the body is not valid JSON: {error}") from None
    if problem := json_bounds_problem(value):
        raise Problem(422, f"the body is too complex: {problem}")
    return value


def json_bounds_problem(value: Any) -> str | None:
    """Why a decoded JSON value exceeds the bounds every body must keep, or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_JSON_STRING:
                return f"a string is longer than {MAX_JSON_STRING} characters"
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH:
            return f"it nests deeper than {MAX_JSON_DEPTH} levels"
        if len(item) > MAX_JSON_ITEMS:
            return f"an array or object has more than {MAX_JSON_ITEMS} items"
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return None


def json_bytes_response(
    view: View, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return view.bytes(body, content_type="application/json", status=status, headers=headers or None)


def json_response(view: View, value: Any, status: int = 200, **headers: str) -> Response:
    return view.bytes(
        orjson.dumps(value), content_type="application/json", status=status, headers=headers or None
    )

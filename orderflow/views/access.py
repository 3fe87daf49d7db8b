"""What each operation of the API is: who may call it, its rate-limit class, and its shape.

Every view declares an :class:`Operation` per HTTP method. The view's dispatch enforces the
roles and the rate limit before the handler runs; ``/openapi.json`` is generated from the same
declarations (with the request schemas the parsers describe).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orderflow.auth.principal import Principal, Role

# Who may call an operation: None is anyone (no token needed).
ANY_ROLE = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})

Schema = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    summary: str
    roles: frozenset[Role] | None
    # The rate-limit class (a key of the Guard's quotas), or None: not limited.
    limit: str | None
    # JSON Schema of the request body (None: no body), and whether one is required.
    body: Callable[[], Schema] | None = None
    body_required: bool = True
    # OpenAPI parameter objects of the query string.
    query: Callable[[], list[Schema]] = list
    # The success status and the JSON Schema of its body.
    status: int = 200
    response: Callable[[], Schema] | None = None
    # Problem statuses the operation answers besides those every operation may answer.
    errors: tuple[int, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def authorize(self, principal: Principal | None) -> str | None:
        """None if ``principal`` may call this operation, else why not ('token' or 'role')."""
        if self.roles is None:
            return None
        if principal is None:
            return "token"
        return None if principal.has_any(self.roles) else "role"


def serves(**by_method: Operation) -> Mapping[str, Operation]:
    """A view's operations by HTTP method (get=..., post=...)."""
    return MappingProxyType(by_method)

"""Bearer tokens for the tests: one HS256 secret, and the headers that carry tokens of it.

Every test that calls ``/api/v1`` gets its tokens here, so the workers it starts and the
requests it sends agree on the key (``WorkerProcess`` passes TEST_JWT_SECRET to every
worker).
"""

from __future__ import annotations

from orderflow.auth.tokens import mint

TEST_JWT_SECRET = "orderflow-tests-" + "0123456789abcdef" * 2
ISSUER = AUDIENCE = "orderflow"


def token(subject: str, *roles: str, ttl: float = 3600, secret: str = TEST_JWT_SECRET) -> str:
    return mint(secret, subject, roles, issuer=ISSUER, audience=AUDIENCE, ttl=ttl)


def bearer(subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(subject, *roles)}"}


def admin() -> dict[str, str]:
    """Headers of an administrator (stock, catalog, tables, dead letters, sagas)."""
    return bearer("test-admin", "admin")


def service() -> dict[str, str]:
    """Headers of a trusted backend acting for any customer."""
    return bearer("test-service", "service")


def customer(customer_id: str) -> dict[str, str]:
    return bearer(customer_id, "customer")

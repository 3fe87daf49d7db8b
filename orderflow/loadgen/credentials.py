"""The bearer tokens the load generator sends: an admin's to stock its skus, and each
customer's own for that customer's orders and cancels (a customer may only place and cancel
its own orders, and every customer has a rate-limit bucket of its own, as real clients do)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orderflow.auth.local import DEFAULT_VAR_DIR, local_secret
from orderflow.auth.tokens import mint
from orderflow.settings import Settings

ADMIN_SUBJECT = "loadgen-admin"
TTL = 24 * 3600.0  # longer than any run


@dataclass
class Credentials:
    secret: str = field(repr=False)
    issuer: str
    audience: str
    _headers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, var_dir: Path = DEFAULT_VAR_DIR
    ) -> Credentials | None:
        """Tokens signed with the configured secret, or the local platform's; None without
        either (a platform run with ORDERFLOW_AUTH=disabled takes requests without tokens)."""
        secret = local_secret(settings, var_dir)
        if secret is None:
            return None
        return cls(secret, settings.jwt_issuer, settings.jwt_audience)

    def admin(self) -> dict[str, str]:
        """The Authorization header of the run's administrator (stock adjustments, reads)."""
        return self._bearer(ADMIN_SUBJECT, "admin")

    def customer(self, customer_id: str) -> dict[str, str]:
        """The Authorization header of one customer (its orders and cancels)."""
        return self._bearer(customer_id, "customer")

    def _bearer(self, subject: str, role: str) -> dict[str, str]:
        key = (subject, role)
        if key not in self._headers:
            token = mint(
                self.secret, subject, [role], issuer=self.issuer, audience=self.audience, ttl=TTL
            )
            self._headers[key] = {"Authorization": f"Bearer {token}"}
        return self._headers[key]

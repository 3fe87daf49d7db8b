"""The guard every API request passes: who the caller is, and whether it is over its limit.

Built once per worker from the settings (by the views' registration, in the composition root).
With ``ORDERFLOW_AUTH=jwt`` (the default) a worker refuses to start without a key to verify
tokens with: an HS256 secret or a JWKS URL. ``ORDERFLOW_AUTH=disabled`` has to be chosen
explicitly; every request then acts as an administrator, and the worker says so in its log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from orderflow.auth import forwarding
from orderflow.auth.principal import DEVELOPER, Principal
from orderflow.auth.ratelimit import RateLimiter
from orderflow.auth.tokens import JwksKeys, TokenVerifier, bearer_token
from orderflow.settings import AuthMode, Settings, SettingsError

log = logging.getLogger(__name__)

ROUTE_CLASSES = ("public", "reads", "writes", "admin")


def key_problems(settings: Settings) -> list[str]:
    """What a worker lacks to verify tokens and sign forwarded requests (empty: nothing)."""
    if settings.auth is AuthMode.DISABLED:
        return []
    problems = []
    if not settings.jwt_secret and not settings.jwt_jwks_url:
        problems.append(
            "ORDERFLOW_JWT_SECRET or ORDERFLOW_JWT_JWKS_URL is required to verify bearer "
            "tokens (or ORDERFLOW_AUTH=disabled, for development only)"
        )
    if settings.jwt_jwks_url and not (settings.forwarding_secret or settings.jwt_secret):
        problems.append(
            "ORDERFLOW_FORWARDING_SECRET is required with ORDERFLOW_JWT_JWKS_URL alone: "
            "the workers sign the requests they forward to each other with it"
        )
    return problems


class Guard:
    def __init__(
        self,
        verifier: TokenVerifier | None,
        limiter: RateLimiter,
        forwarding_key: bytes,
    ) -> None:
        self.verifier = verifier  # None: authentication is disabled
        self.limiter = limiter
        self.forwarding_key = forwarding_key
        self.nonces = forwarding.Nonces()

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        limiter = RateLimiter(
            {
                "public": settings.rate_limit_public,
                "reads": settings.rate_limit_reads,
                "writes": settings.rate_limit_writes,
                "admin": settings.rate_limit_admin,
            },
            settings.rate_limit_clients,
        )
        if settings.auth is AuthMode.DISABLED:
            log.warning(
                "ORDERFLOW_AUTH=disabled: the API is open, every request acts as an "
                "administrator; never run a worker reachable by others like this"
            )
            return cls(None, limiter, forwarding.derive_key("orderflow without authentication"))
        problems = key_problems(settings)
        if problems:
            raise SettingsError(problems)
        shared = settings.forwarding_secret or settings.jwt_secret
        verifier = TokenVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway,
            secret=settings.jwt_secret,
            jwks=JwksKeys(settings.jwt_jwks_url) if settings.jwt_jwks_url else None,
        )
        return cls(verifier, limiter, forwarding.derive_key(shared))

    async def principal(self, authorization: str | None) -> Principal | None:
        """Who sent a request with this Authorization header: None for no credentials;
        TokenRefused for credentials that are not acceptable."""
        if self.verifier is None:
            return DEVELOPER
        token = bearer_token(authorization)
        return None if token is None else await self.verifier.verify(token)

    def forward_headers(
        self, method: str, target: str, body: bytes, by: str, authorization: str | None
    ) -> dict[str, str]:
        """The headers that mark a request this worker forwards to another, signed."""
        signature = forwarding.sign(
            self.forwarding_key, method, target, body, by, authorization or ""
        )
        headers = {forwarding.FORWARDED_BY: by, forwarding.SIGNATURE: signature}
        if authorization:
            headers["Authorization"] = authorization
        return headers

    @staticmethod
    def says_forwarded(headers: Mapping[str, str]) -> bool:
        """Whether a request says a worker forwarded it (true or not)."""
        return bool(headers.get(forwarding.FORWARDED_BY) or headers.get(forwarding.SIGNATURE))

    def trusts_forward(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        """Whether the request was forwarded by a worker of this deployment: its mark signs
        this very request, is recent, and was not used before (its nonce is remembered)."""
        by, signature = headers.get(forwarding.FORWARDED_BY), headers.get(forwarding.SIGNATURE)
        if not by or not signature:
            return False
        authorization = headers.get("Authorization", "")
        mark = forwarding.verify(
            self.forwarding_key, signature, method, target, body, by, authorization
        )
        return mark is not None and self.nonces.first_use(mark)

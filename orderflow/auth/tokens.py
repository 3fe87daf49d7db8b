"""Bearer tokens: JWTs verified with PyJWT, and minted for local use.

A token is accepted only if its header names an algorithm this deployment has a key for, and
only with that key: HS256 with ``ORDERFLOW_JWT_SECRET``; RS256 or ES256 with a key of the JWKS
(``ORDERFLOW_JWT_JWKS_URL``) whose type and curve give that algorithm. ``alg: none``, an HMAC
token "signed" with a public key (algorithm confusion) and every other algorithm are refused
before any signature is computed. ``iss``, ``aud``, ``exp`` and ``sub`` are required, ``nbf`` is
checked when present, both times with ``leeway`` seconds of clock skew. A token verified once
is taken again without decoding for at most five minutes, never past its ``exp``: a key removed
from the JWKS stops the tokens it signed within that time.

Every refusal is a :class:`TokenRefused` carrying an RFC 6750 error code and a description
safe to show the client (it never echoes the token).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
from jwt import PyJWK, PyJWKSet

from orderflow.auth.principal import Principal
from orderflow.domain.identifiers import MAX_ID_LENGTH, id_problem
from orderflow.errors import OrderflowError

log = logging.getLogger(__name__)

HMAC_ALGORITHM = "HS256"
KEY_ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Claims that are NumericDates (RFC 7519, 2): a JSON number of seconds since 1970, which here
# must also fall within 1970-01-01 and 9999-12-31T23:59:59Z. PyJWT reads them through int(), so
# it takes "9999999999" (a string) and 1e30 (no time at all) as times.
TIME_CLAIMS = ("exp", "nbf", "iat")
MAX_NUMERIC_DATE = 253_402_300_799
MAX_TOKEN_LENGTH = 4096
MAX_SUBJECT_LENGTH = MAX_ID_LENGTH  # a customer's subject is its customer id
# Tokens verified lately, remembered so that a client's next requests with the same token do not
# pay for its verification again (PyJWT's decoding was an eighth of an order's intake): at most
# this many, each for at most this many seconds and never past its exp (or before its nbf).
VERIFIED_KEPT = 10_000
VERIFIED_SECONDS = 300.0


class TokenRefused(OrderflowError):
    """The request's credentials are not acceptable; ``error`` is an RFC 6750 error code."""

    def __init__(self, description: str, error: str | None = "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None without the header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        # Another scheme is no bearer credential: answered like a missing one (no error code).
        raise TokenRefused("use the Bearer authentication scheme", error=None)
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or " " in token:
        raise TokenRefused("the bearer token is malformed")
    return token


Fetch = Callable[[str], Awaitable[bytes]]


class JwksKeys:
    """The signing keys an identity provider publishes (RFC 7517), fetched without blocking.

    The set is fetched on first use, again after ``max_age`` seconds, and when a token names a
    key id it does not hold (a key rotation), at most once per ``min_interval`` seconds so that
    tokens with made-up key ids cannot make the worker hammer the provider.
    """

    def __init__(
        self,
        url: str,
        fetch: Fetch | None = None,
        *,
        max_age: float = 300.0,
        min_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch or _fetch
        self.max_age = max_age
        self.min_interval = min_interval
        self.clock = clock
        self._keys: list[PyJWK] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, algorithm: str) -> PyJWK:
        now = self.clock()
        stale = self._fetched_at is None or now - self._fetched_at > self.max_age
        found = None if stale else self._select(kid, algorithm)
        if found is None and (
            self._fetched_at is None or now - self._fetched_at >= self.min_interval
        ):
            await self._refresh()
            found = self._select(kid, algorithm)
        if found is None:
            raise TokenRefused("the token's signing key is not known")
        return found

    def _select(self, kid: str | None, algorithm: str) -> PyJWK | None:
        candidates = [k for k in self._keys if k.algorithm_name == algorithm]
        if kid is not None:
            candidates = [k for k in candidates if k.key_id == kid]
        elif len(candidates) != 1:  # without a key id only an unambiguous key will do
            return None
        return candidates[0] if candidates else None

    async def _refresh(self) -> None:
        async with self._lock:
            if self._fetched_at is not None and self.clock() - self._fetched_at < 1.0:
                return  # another request refreshed it just now
            try:
                document = orjson.loads(await self._fetch(self.url))
                self._keys = signing_keys(document)
            except Exception as error:  # the provider's problem: keep the keys held
                log.warning("could not load the JWKS from %s: %r", self.url, error)
            self._fetched_at = self.clock()


def signing_keys(document: Any) -> list[PyJWK]:
    """The RS256 and ES256 signature keys of a JWKS document; other keys are left out."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS is an object with a list of keys")
    usable = [
        k
        for k in document["keys"]
        if isinstance(k, Mapping) and k.get("use", "sig") == "sig" and k.get("kty") in ("RSA", "EC")
    ]
    if not usable:
        return []
    keys = PyJWKSet.from_dict({"keys": usable}).keys
    return [k for k in keys if k.algorithm_name in KEY_ALGORITHMS]


async def _fetch(url: str) -> bytes:
    if url.startswith("file://"):
        return await asyncio.to_thread(Path(url.removeprefix("file://")).read_bytes)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as answer:
        answer.raise_for_status()
        return await answer.read()


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    valid_from: float  # nbf, less the leeway
    valid_until: float  # the earlier of exp (plus the leeway) and the end of its time kept


@dataclass
class TokenVerifier:
    issuer: str
    audience: str
    leeway: float
    secret: str = ""
    jwks: JwksKeys | None = None
    clock: Callable[[], float] = time.time
    _verified: dict[str, _Verified] = field(default_factory=dict, repr=False)

    @property
    def algorithms(self) -> list[str]:
        return [HMAC_ALGORITHM] * bool(self.secret) + list(KEY_ALGORITHMS) * bool(self.jwks)

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` stands for, or TokenRefused saying why not."""
        now = self.clock()
        known = self._verified.get(token)
        if known is not None:
            if known.valid_from <= now < known.valid_until:
                return known.principal
            del self._verified[token]  # verified again below: refused, or kept anew
        principal, claims = await self._verify(token)
        exp, nbf = claims["exp"], claims.get("nbf")
        if len(self._verified) >= VERIFIED_KEPT:
            del self._verified[next(iter(self._verified))]  # the one kept longest
        self._verified[token] = _Verified(
            principal,
            valid_from=(nbf if isinstance(nbf, int | float) else now) - self.leeway,
            valid_until=min(float(exp) + self.leeway, now + VERIFIED_SECONDS),
        )
        return principal

    async def _verify(self, token: str) -> tuple[Principal, Mapping[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRefused("the bearer token is malformed") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRefused(f"tokens signed with {str(algorithm)[:20]!r} are not accepted")
        key: Any
        if algorithm == HMAC_ALGORITHM:
            key = self.secret
        else:
            assert self.jwks is not None
            kid = header.get("kid")
            key = await self.jwks.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("the token is not meant for this service (aud)") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("the token's issuer is not trusted (iss)") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRefused(f"the token has no {error.claim!r} claim") from None
        except (jwt.InvalidTokenError, jwt.PyJWKError, ValueError, TypeError):
            raise TokenRefused("the bearer token is malformed") from None
        for name in TIME_CLAIMS:
            if name in claims and not is_numeric_date(claims[name]):
                raise TokenRefused(
                    f"{name} must be a number of seconds since 1970 (a NumericDate) within "
                    "1970-01-01 and 9999-12-31"
                )
        return principal_of(claims), claims


def is_numeric_date(value: Any) -> bool:
    """Whether a claim's value is a NumericDate: a JSON number, within 1970 and 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= MAX_NUMERIC_DATE  # NaN and the infinities fail this too


def principal_of(claims: Mapping[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or id_problem(subject, MAX_SUBJECT_LENGTH) is not None:
        raise TokenRefused(
            f"sub must be a string of 1 to {MAX_SUBJECT_LENGTH} characters, without control "
            "characters or line breaks"
        )
    roles = claims.get("roles", [])
    if isinstance(claims.get("role"), str):
        roles = [*roles, claims["role"]] if isinstance(roles, list) else [claims["role"]]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenRefused("roles must be a list of role names")
    return Principal.of(subject, roles)


def mint(
    secret: str,
    subject: str,
    roles: Iterable[str],
    *,
    issuer: str,
    audience: str,
    ttl: float,
    now: float | None = None,
) -> str:
    """An HS256 token for ``subject`` with ``roles``, valid from now for ``ttl`` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "roles": list(roles),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl),
    }
    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)

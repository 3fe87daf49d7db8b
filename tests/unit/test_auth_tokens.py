"""Bearer token verification: every way a token can be wrong is refused with an RFC 6750 code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from orderflow.auth import tokens
from orderflow.auth.principal import Principal, Role
from orderflow.auth.tokens import (
    JwksKeys,
    TokenRefused,
    TokenVerifier,
    bearer_token,
    mint,
    principal_of,
)

SECRET = "s" * 64
NOW = time.time()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "orderflow",
        "aud": "orderflow",
        "sub": "c-1",
        "roles": ["customer"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else None
    if algorithm is not None:
        document = orjson.loads(algorithm.to_jwk(private.public_key()))
    else:
        document = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    return {**document, "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]}


def signed(private: Any, algorithm: str, kid: str | None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**overrides), private, algorithm=algorithm, headers=headers)


class Fetches:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.count = 0

    async def __call__(self, url: str) -> bytes:
        self.count += 1
        return orjson.dumps(self.document)


def verifier(*, secret: str = SECRET, jwks: dict[str, Any] | None = None) -> TokenVerifier:
    keys = JwksKeys("file:///jwks.json", Fetches(jwks)) if jwks is not None else None
    return TokenVerifier("orderflow", "orderflow", leeway=30, secret=secret, jwks=keys)


async def refused(token: str, check: TokenVerifier | None = None) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        await (check or verifier()).verify(token)
    return caught.value


async def test_a_valid_hs256_token_gives_its_subject_and_roles() -> None:
    principal = await verifier().verify(hs256(roles=["customer", "unknown-role"]))
    assert principal == Principal("c-1", frozenset({Role.CUSTOMER}))


async def test_a_minted_token_verifies() -> None:
    token = mint(SECRET, "ops", ["admin"], issuer="orderflow", audience="orderflow", ttl=60)
    principal = await verifier().verify(token)
    assert principal.subject == "ops"
    assert principal.is_admin


async def test_alg_none_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(orjson.dumps(claims())).rstrip(b"=").decode()
    error = await refused(f"{header}.{payload}.")
    assert error.error == "invalid_token"
    assert "not accepted" in error.description


async def test_an_hmac_token_keyed_with_the_public_key_is_refused() -> None:
    # Algorithm confusion: a verifier that knows RS256 keys only must not take their public
    # key as an HMAC secret.
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"rsa-1"}')
    payload = base64.urlsafe_b64encode(orjson.dumps(claims()))
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    error = await refused(forged, verifier(secret="", jwks=JWKS))
    assert "not accepted" in error.description
    # With both kinds of key configured, the HMAC is checked against the secret only.
    error = await refused(forged, verifier(jwks=JWKS))
    assert "signature" in error.description


async def test_rs256_and_es256_tokens_verify_with_the_jwks() -> None:
    check = verifier(secret="", jwks=JWKS)
    assert (await check.verify(signed(RSA_KEY, "RS256", "rsa-1"))).subject == "c-1"
    assert (await check.verify(signed(EC_KEY, "ES256", "ec-1", sub="c-2"))).subject == "c-2"


async def test_a_token_signed_by_an_unknown_key_is_refused() -> None:
    check = verifier(secret="", jwks=JWKS)
    error = await refused(signed(OTHER_RSA_KEY, "RS256", "rsa-1"), check)
    assert "signature" in error.description
    error = await refused(signed(OTHER_RSA_KEY, "RS256", "rsa-9"), check)
    assert "signing key is not known" in error.description


async def test_a_key_of_the_wrong_type_for_the_algorithm_is_never_used() -> None:
    # An ES256 header naming the RSA key's id: no ES256 key has that id.
    error = await refused(signed(EC_KEY, "ES256", "rsa-1"), verifier(secret="", jwks=JWKS))
    assert "signing key is not known" in error.description


async def test_an_unknown_key_id_refreshes_the_jwks_at_most_once_per_interval() -> None:
    fetches = Fetches({"keys": [jwk(RSA_KEY, "rsa-1")]})
    clock = [0.0]
    keys = JwksKeys("https://idp/jwks", fetches, min_interval=10, clock=lambda: clock[0])
    check = TokenVerifier("orderflow", "orderflow", 30, jwks=keys)
    await check.verify(signed(RSA_KEY, "RS256", "rsa-1"))
    for _ in range(5):
        await refused(signed(EC_KEY, "ES256", "ec-1"), check)
    assert fetches.count == 1
    fetches.document = JWKS  # the provider rotates a key in
    clock[0] = 11.0
    assert (await check.verify(signed(EC_KEY, "ES256", "ec-1"))).subject == "c-1"
    assert fetches.count == 2


@pytest.mark.parametrize(
    ("token", "description"),
    [
        (lambda: hs256(exp=int(NOW) - 120), "expired"),
        (lambda: hs256(nbf=int(NOW) + 120), "not valid yet"),
        (lambda: hs256(aud="someone-else"), "aud"),
        (lambda: hs256(iss="https://evil.example"), "iss"),
        (lambda: jwt.encode(claims(), "x" * 64, algorithm="HS256"), "signature"),
        (lambda: hs256(exp=None), "'exp'"),
        (lambda: hs256(sub=None), "'sub'"),
        (lambda: hs256(aud=None), "'aud'"),
        (lambda: hs256(sub="x" * 101), "sub must be"),
        (lambda: hs256(sub="c-1\x00"), "sub must be"),
        (lambda: hs256(sub="c-1\nadmin"), "sub must be"),
        (lambda: hs256(exp=str(int(NOW) + 600)), "exp must be a number"),
        (lambda: hs256(exp=1e30), "exp must be a number"),
        (lambda: hs256(nbf=str(int(NOW) - 60)), "nbf must be a number"),
        (lambda: hs256(nbf=-1e30), "nbf must be a number"),
        (lambda: hs256(iat="yesterday"), "iat must be a number"),
        (lambda: hs256(iat=1e30), "iat must be a number"),
        (lambda: hs256(iat=[1]), "iat must be a number"),
        (lambda: hs256(roles="admin"), "roles must be"),
        (lambda: "not-a-token", "malformed"),
        (lambda: "a.b.c", "malformed"),
        (lambda: hs256()[:-1] + "!", "malformed"),
        (lambda: jwt.encode(claims(), SECRET, algorithm="HS512"), "not accepted"),
        (lambda: signed(RSA_KEY, "RS256", "rsa-1"), "not accepted"),  # no JWKS configured
    ],
)
async def test_bad_tokens_are_refused_as_invalid_tokens(token: Any, description: str) -> None:
    error = await refused(token())
    assert error.error == "invalid_token"
    assert description in error.description


async def test_times_may_be_fractional_numbers() -> None:
    assert await verifier().verify(hs256(exp=NOW + 600.5, nbf=NOW - 0.5, iat=NOW - 0.5))


async def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    now = int(time.time())
    assert await verifier().verify(hs256(exp=now - 10, nbf=now + 10))


def test_the_authorization_header_must_be_a_bearer_token() -> None:
    assert bearer_token(None) is None
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc") == "abc"
    with pytest.raises(TokenRefused) as other:
        bearer_token("Basic dXNlcjpwYXNz")
    assert other.value.error is None  # like no credentials at all: a bare challenge
    for malformed in ("Bearer", "Bearer ", "Bearer a b", "Bearer " + "a" * 9000):
        with pytest.raises(TokenRefused) as caught:
            bearer_token(malformed)
        assert caught.value.error == "invalid_token"


def test_a_single_role_claim_counts_too() -> None:
    assert principal_of({"sub": "ops", "role": "admin"}).is_admin
    assert principal_of({"sub": "s", "roles": ["service"], "role": "admin"}).roles == {
        Role.SERVICE,
        Role.ADMIN,
    }


def test_who_may_act_for_a_customer() -> None:
    customer = Principal.of("c-1", ["customer"])
    assert customer.may_act_for("c-1")
    assert not customer.may_act_for("c-2")
    assert Principal.of("svc", ["service"]).may_act_for("c-2")
    assert Principal.of("ops", ["admin"]).may_act_for("c-2")
    assert not Principal.of("c-1", []).may_act_for("c-1")  # no role, no access


async def test_a_token_verified_once_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    check = verifier()
    token = hs256()
    first = await check.verify(token)

    def decoded_again(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(jwt, "decode", decoded_again)
    assert await check.verify(token) == first


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    check = TokenVerifier("orderflow", "orderflow", leeway=0, secret=SECRET)
    expires = int(time.time()) + 1
    token = hs256(exp=expires)
    await check.verify(token)
    await asyncio.sleep(expires - time.time() + 0.05)
    with pytest.raises(TokenRefused, match="expired"):
        await check.verify(token)


async def test_a_token_is_verified_again_after_five_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = time.time()
    check = verifier()
    token = hs256(exp=int(now) + 3600)
    await check.verify(token)
    check.clock = lambda: now + tokens.VERIFIED_SECONDS + 1
    calls = []
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    await check.verify(token)
    assert calls == [1]  # a key removed from the JWKS stops such a token within five minutes


async def test_the_tokens_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_KEPT", 2)
    check = verifier()
    first, second, third = hs256(sub="c-1"), hs256(sub="c-2"), hs256(sub="c-3")
    for token in (first, second, third):
        await check.verify(token)
    assert list(check._verified) == [second, third]

"""Token buckets per client and route class; the signed mark of forwarded requests."""

from __future__ import annotations

import pytest

from orderflow.auth import forwarding
from orderflow.auth.guard import Guard
from orderflow.auth.ratelimit import RateLimiter
from orderflow.settings import AuthMode, Quota, Settings, SettingsError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_bursts_its_quota_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter({"writes": Quota(3, 6)}, max_clients=100, clock=clock)
    verdicts = [limiter.take("writes", "sub:c-1") for _ in range(4)]
    assert [v.allowed for v in verdicts if v] == [True, True, True, False]
    refused = verdicts[-1]
    assert refused is not None
    assert refused.retry_after == 2  # one token every 2 s
    assert refused.headers() == {
        "RateLimit-Policy": '"writes";q=3;w=6',
        "RateLimit": '"writes";r=0;t=6',
        "Retry-After": "2",
    }
    clock.now += 2
    again = limiter.take("writes", "sub:c-1")
    assert again is not None
    assert again.allowed
    assert "Retry-After" not in again.headers()


def test_clients_and_route_classes_have_buckets_of_their_own() -> None:
    limiter = RateLimiter({"writes": Quota(1, 60), "reads": Quota(2, 60)}, 100, Clock())
    assert limiter.take("writes", "sub:c-1").allowed  # type: ignore[union-attr]
    assert not limiter.take("writes", "sub:c-1").allowed  # type: ignore[union-attr]
    assert limiter.take("writes", "sub:c-2").allowed  # type: ignore[union-attr]
    assert limiter.take("reads", "sub:c-1").allowed  # type: ignore[union-attr]


def test_a_class_without_a_quota_is_not_limited() -> None:
    limiter = RateLimiter({"writes": None}, 100, Clock())
    assert limiter.take("writes", "sub:c-1") is None
    assert limiter.take("unknown", "sub:c-1") is None
    assert len(limiter) == 0


def test_idle_buckets_are_dropped_and_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter({"reads": Quota(10, 10)}, max_clients=100, clock=clock)
    for index in range(1000):
        limiter.take("reads", f"addr:10.0.{index // 250}.{index % 250}")
    assert len(limiter) == 100  # the least recently used went first
    clock.now += 11  # every bucket refilled: the same as none
    limiter.take("reads", "sub:late")
    assert len(limiter) == 1


def test_a_busy_client_keeps_its_bucket_while_idle_ones_go() -> None:
    clock = Clock()
    limiter = RateLimiter({"reads": Quota(2, 100)}, max_clients=100, clock=clock)
    limiter.take("reads", "sub:busy")
    limiter.take("reads", "sub:busy")
    clock.now += 10
    for index in range(50):
        limiter.take("reads", f"sub:other-{index}")
    # busy's bucket is not full yet, so it is kept: evicting it would hand it a new burst.
    verdict = limiter.take("reads", "sub:busy")
    assert verdict is not None
    assert not verdict.allowed


def test_a_forwarding_mark_verifies_only_unchanged_and_recent() -> None:
    key = forwarding.derive_key("k" * 32)
    args = ("GET", "/api/v1/orders/o-1?wait=5", b"", "http://w0:6066", "Bearer abc")
    mark = forwarding.sign(key, *args, now=5000)
    verified = forwarding.verify(key, mark, *args, now=5009)
    assert verified is not None
    assert verified.stamp == 5000
    assert len(verified.nonce) == 32
    assert forwarding.verify(key, mark, *args, now=4991)  # the other worker's clock is ahead
    assert not forwarding.verify(key, mark, *args, now=5000 + forwarding.MAX_AGE + 1)
    assert not forwarding.verify(key, mark, "POST", *args[1:], now=5005)
    assert not forwarding.verify(key, mark, args[0], "/api/v1/orders/o-2", *args[2:], now=5005)
    assert not forwarding.verify(key, mark, args[0], f"{args[1]}0", *args[2:], now=5005)
    assert not forwarding.verify(key, mark, *args[:2], b"{}", *args[3:], now=5005)
    assert not forwarding.verify(key, mark, *args[:3], "http://w1:6066", args[4], now=5005)
    assert not forwarding.verify(key, mark, *args[:4], "Bearer other", now=5005)
    assert not forwarding.verify(forwarding.derive_key("x" * 32), mark, *args, now=5005)
    other_nonce = mark.replace(verified.nonce, "0" * 32)
    assert not forwarding.verify(key, other_nonce, *args, now=5005)
    assert not forwarding.verify(key, mark.replace("t=5000", "t=5001"), *args, now=5005)
    assert not forwarding.verify(key, "t=5000", *args, now=5005)
    assert not forwarding.verify(key, "garbage", *args, now=5005)
    # Each mark has a nonce of its own.
    assert forwarding.sign(key, *args, now=5000) != mark


def test_a_mark_is_accepted_once_and_nonces_are_forgotten_when_too_old() -> None:
    clock = Clock()
    nonces = forwarding.Nonces(max_nonces=3, clock=clock)
    first = forwarding.Mark(int(clock.now), "a" * 32)
    assert nonces.first_use(first)
    assert not nonces.first_use(first)  # a replay
    assert nonces.first_use(forwarding.Mark(int(clock.now), "b" * 32))
    assert nonces.first_use(forwarding.Mark(int(clock.now), "c" * 32))
    # Full of nonces that could still be replayed: a new mark is refused, none forgotten.
    assert not nonces.first_use(forwarding.Mark(int(clock.now), "d" * 32))
    assert not nonces.first_use(first)
    clock.now += forwarding.MAX_AGE + 2  # every mark held is too old to verify now
    assert nonces.first_use(forwarding.Mark(int(clock.now), "d" * 32))
    assert len(nonces) == 1


def test_a_worker_refuses_to_start_without_a_way_to_verify_tokens() -> None:
    with pytest.raises(SettingsError, match="ORDERFLOW_JWT_SECRET or ORDERFLOW_JWT_JWKS_URL"):
        Guard.from_settings(Settings())
    with pytest.raises(SettingsError, match="ORDERFLOW_FORWARDING_SECRET"):
        Guard.from_settings(Settings(jwt_jwks_url="https://idp.example/jwks"))
    assert Guard.from_settings(Settings(jwt_secret="k" * 32)).verifier is not None
    assert Guard.from_settings(Settings(auth=AuthMode.DISABLED)).verifier is None


def test_auth_and_limit_settings_are_parsed_and_validated() -> None:
    settings = Settings.from_env(
        {
            "ORDERFLOW_JWT_SECRET": "k" * 32,
            "ORDERFLOW_RATE_LIMIT_WRITES": "20/10",
            "ORDERFLOW_RATE_LIMIT_ADMIN": "off",
            "ORDERFLOW_JWT_JWKS_URL": "file:///etc/orderflow/jwks.json",
        }
    )
    assert settings.rate_limit_writes == Quota(20, 10)
    assert settings.rate_limit_admin is None
    assert settings.as_env()["ORDERFLOW_RATE_LIMIT_ADMIN"] == "off"
    assert Settings.from_env(settings.as_env()) == settings
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "ORDERFLOW_JWT_SECRET": "short",
                "ORDERFLOW_RATE_LIMIT_READS": "fast",
                "ORDERFLOW_AUTH": "maybe",
                "ORDERFLOW_JWT_AUDIENCE": "",
            }
        )
    assert len(caught.value.problems) == 4
    assert "k" * 32 not in repr(settings)  # secrets stay out of logs

"""The mark a worker puts on a request it forwards to the owner of a key, signed.

The owner answers a forwarded request itself (it never forwards it again) and does not charge
it to the client's rate limit a second time: the receiving worker did. Both are decided by a
header anyone could send, so the mark is an HMAC over the method, the path with its query, the
forwarding worker, the client's Authorization header and a timestamp, keyed by a secret the
workers share. A mark that does not verify, or is older than ``MAX_AGE`` seconds, still stops
further forwarding but is charged like any other request.

The identity itself is not taken from the mark: the owner verifies the client's bearer token
again (it is forwarded as it came).
"""

from __future__ import annotations

import hashlib
import hmac
import time

FORWARDED_BY = "X-Orderflow-Forwarded-By"
SIGNATURE = "X-Orderflow-Forward-Signature"
MAX_AGE = 60.0


def derive_key(secret: str, purpose: str = "orderflow forwarded requests") -> bytes:
    """A key for one purpose, derived from a shared secret (so it never signs tokens too)."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def _mac(key: bytes, stamp: str, method: str, target: str, by: str, authorization: str) -> str:
    message = "\n".join((stamp, method.upper(), target, by, authorization)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(
    key: bytes, method: str, target: str, by: str, authorization: str, now: float | None = None
) -> str:
    """The signature header's value for a request to ``target`` (path and query)."""
    stamp = str(int(time.time() if now is None else now))
    return f"t={stamp},s={_mac(key, stamp, method, target, by, authorization)}"


def verify(
    key: bytes,
    signature: str,
    method: str,
    target: str,
    by: str,
    authorization: str,
    now: float | None = None,
) -> bool:
    fields = dict(part.partition("=")[::2] for part in signature.split(","))
    stamp, mac = fields.get("t", ""), fields.get("s", "")
    if not stamp.isdigit() or not mac:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > MAX_AGE:
        return False
    expected = _mac(key, stamp, method, target, by, authorization)
    return hmac.compare_digest(expected, mac)

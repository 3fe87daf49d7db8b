"""The mark a worker puts on a request it forwards to the owner of a key, signed.

The owner answers a forwarded request from its own state (it never forwards it again) and
does not charge it to the client's rate limit a second time: the receiving worker did. Both
would be anyone's for the asking if a header were enough, so the mark is an HMAC, keyed by a
secret the workers share, over:

- the method, the path with its query, and a SHA-256 digest of the body: the mark is good for
  this request only;
- the forwarding worker and the client's Authorization header;
- the time it was made, and a random nonce: a mark is good for ``MAX_AGE`` seconds, and once.

A worker remembers the nonces of the marks it accepted until they are too old to be accepted
anyway (:class:`Nonces`, in bounded memory), and refuses a mark whose nonce it has seen: a
request captured on the way cannot be sent again. A request that says it was forwarded and
whose mark does not verify is refused (the views answer 401): it is never answered from the
state of a worker that does not own its key.

The identity itself is not taken from the mark: the owner verifies the client's bearer token
again (it is forwarded as it came).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FORWARDED_BY = "X-Orderflow-Forwarded-By"
SIGNATURE = "X-Orderflow-Forward-Signature"
MAX_AGE = 10.0
# Nonces held at most: far more than a worker forwards in 2 * MAX_AGE seconds. When that many
# are held and none is old enough to forget, new marks are refused rather than a nonce that
# could still be replayed forgotten.
MAX_NONCES = 100_000
_NONCE = re.compile(r"[0-9a-f]{32}")


def derive_key(secret: str, purpose: str = "orderflow forwarded requests") -> bytes:
    """A key for one purpose, derived from a shared secret (so it never signs tokens too)."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _mac(
    key: bytes,
    stamp: str,
    nonce: str,
    method: str,
    target: str,
    body: bytes,
    by: str,
    authorization: str,
) -> str:
    fields = (stamp, nonce, method.upper(), target, body_digest(body), by, authorization)
    return hmac.new(key, "\n".join(fields).encode(), hashlib.sha256).hexdigest()


def sign(
    key: bytes,
    method: str,
    target: str,
    body: bytes,
    by: str,
    authorization: str,
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    """The signature header's value for a request to ``target`` (path and query) with
    ``body``, made now, with a new nonce."""
    stamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16) if nonce is None else nonce
    mac = _mac(key, stamp, nonce, method, target, body, by, authorization)
    return f"t={stamp},n={nonce},s={mac}"


@dataclass(frozen=True, slots=True)
class Mark:
    stamp: int
    nonce: str


def verify(
    key: bytes,
    signature: str,
    method: str,
    target: str,
    body: bytes,
    by: str,
    authorization: str,
    now: float | None = None,
) -> Mark | None:
    """The mark, if ``signature`` signs this request and was made within MAX_AGE seconds
    (either way: the workers' clocks may differ a little); else None. Whether its nonce was
    seen before is for :class:`Nonces` to say."""
    fields = dict(part.partition("=")[::2] for part in signature.split(","))
    stamp, nonce, mac = fields.get("t", ""), fields.get("n", ""), fields.get("s", "")
    if not re.fullmatch(r"\d{1,12}", stamp) or not _NONCE.fullmatch(nonce) or not mac:
        return None
    if abs((time.time() if now is None else now) - int(stamp)) > MAX_AGE:
        return None
    expected = _mac(key, stamp, nonce, method, target, body, by, authorization)
    if not hmac.compare_digest(expected, mac):
        return None
    return Mark(int(stamp), nonce)


class Nonces:
    """The nonces of the marks accepted lately, each until its mark is too old to verify."""

    def __init__(
        self, max_nonces: int = MAX_NONCES, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_nonces = max_nonces
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()  # in the order they came

    def __len__(self) -> int:
        return len(self._until)

    def first_use(self, mark: Mark) -> bool:
        """Whether ``mark``'s nonce is new (it is remembered from now on); False for a replay,
        or when memory is full of nonces that could still be replayed."""
        now = self.clock()
        while self._until and next(iter(self._until.values())) < now:
            self._until.popitem(last=False)
        if mark.nonce in self._until or len(self._until) >= self.max_nonces:
            return False
        # verify() accepts the mark until MAX_AGE past its stamp.
        self._until[mark.nonce] = mark.stamp + MAX_AGE + 1
        return True

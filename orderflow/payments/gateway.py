"""The payment gateway as the saga's payment step sees it, and its HTTP client.

The saga must never charge an order twice, yet it retries after crashes and rebalances. Two
things make that safe: every call carries an idempotency key the caller derives from the order
(so a retry is recognised by the gateway, not re-executed), and failures are classified by what
they tell the caller about the outcome:

* :class:`GatewayTimeout`: no answer in time. The authorization may or may not have happened;
  retry with the same idempotency key (or void) to learn and settle it.
* :class:`GatewayUnavailable`: the gateway could not be reached or answered nonsense or 5xx.
  Also transient: retry with the same key.
* :class:`GatewayError` itself: the gateway understood and refused the call (a reused key with
  a different request, an unknown payment). Retrying cannot help; it is a bug or a data problem.

A declined card is not an error: it is a normal :class:`Authorization` with ``approved=False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, Self
from urllib.parse import quote

import aiohttp
from yarl import URL

from orderflow.errors import OrderflowError

# Enough for a worker's concurrent saga steps; a bound keeps a slow gateway from making the
# worker open thousands of sockets (requests beyond it wait for a free connection).
CONNECTION_LIMIT = 100


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One authorization: hold ``amount`` on the card behind ``token`` for ``order_id``."""

    order_id: str
    amount: int  # minor units (cents)
    currency: str  # ISO 4217
    token: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Authorization:
    """The gateway's decision: approved with a ``payment_id``, or declined with a reason."""

    approved: bool
    payment_id: str | None
    decline_reason: str | None  # e.g. "card_declined", "amount_over_limit"


class GatewayError(OrderflowError):
    """The gateway refused the call for good (retrying the same call cannot succeed)."""


class GatewayTimeout(GatewayError):
    """No answer within the timeout: the outcome is unknown. Transient."""


class GatewayUnavailable(GatewayError):
    """Connection refused or reset, HTTP 5xx, or a malformed answer. Transient."""


class PaymentGateway(Protocol):
    """What the payment step needs from a gateway; tests and the HTTP client both provide it."""

    async def authorize(self, request: AuthorizationRequest) -> Authorization:
        """Authorize ``request``; the same idempotency key always yields the first decision."""
        ...

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Release an authorization (compensation). Voiding a voided payment succeeds."""
        ...

    async def close(self) -> None:
        """Release the connections; no call may follow."""
        ...


class HttpPaymentGateway(PaymentGateway):
    """:class:`PaymentGateway` over the gateway's HTTP API (see ``payments.simulator``).

    The :class:`aiohttp.ClientSession` is created on the first call, inside the running event
    loop, because a session belongs to the loop it was made in and a Faust worker builds its
    collaborators before its loop runs. ``timeout`` bounds each whole call (connect, send,
    answer), so a hung gateway costs a saga step at most that long.
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def authorize(self, request: AuthorizationRequest) -> Authorization:
        body = {
            "order_id": request.order_id,
            "amount": request.amount,
            "currency": request.currency,
            "token": request.token,
        }
        status, answer = await self._call(
            "/v1/authorizations", body, idempotency_key=request.idempotency_key
        )
        if status == 201:
            payment_id = answer.get("payment_id")
            if not isinstance(payment_id, str) or not payment_id:
                raise GatewayUnavailable(f"the gateway approved without a payment_id: {answer}")
            return Authorization(approved=True, payment_id=payment_id, decline_reason=None)
        if status == 402:
            reason = answer.get("reason")
            if not isinstance(reason, str) or not reason:
                raise GatewayUnavailable(f"the gateway declined without a reason: {answer}")
            return Authorization(approved=False, payment_id=None, decline_reason=reason)
        raise _unexpected(status, answer, f"authorization of order {request.order_id!r}")

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        path = f"/v1/authorizations/{quote(payment_id, safe='')}/void"
        status, answer = await self._call(path, {}, idempotency_key=idempotency_key)
        if status == 200:
            return
        if status == 404:
            raise GatewayError(f"cannot void payment {payment_id!r}: the gateway does not know it")
        raise _unexpected(status, answer, f"void of payment {payment_id!r}")

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise GatewayError("the payment gateway client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTION_LIMIT),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                raise_for_status=False,
            )
        return self._session

    async def _call(
        self, path: str, body: dict[str, Any], *, idempotency_key: str
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` as JSON; return the status and the JSON object answered.

        Transport failures are translated here, so callers only decide what a status means.
        """
        url = URL(self._base_url + path, encoded=True)
        try:
            async with self._client().post(
                url, json=body, headers={"Idempotency-Key": idempotency_key}
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as error:  # asyncio's and aiohttp's timeouts alike
            raise GatewayTimeout(
                f"the payment gateway did not answer POST {path} within {self._timeout}s"
            ) from error
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            raise GatewayUnavailable(
                f"the payment gateway at {self._base_url} is unreachable: {error}"
            ) from error
        except aiohttp.ClientError as error:
            raise GatewayError(f"POST {path} to the payment gateway failed: {error}") from error
        if status >= 500:
            raise GatewayUnavailable(f"the payment gateway answered {status} to POST {path}")
        return status, _json_object(raw, status, path)


def _json_object(raw: bytes, status: int, path: str) -> dict[str, Any]:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        return answer
    message = (
        f"the payment gateway answered {status} to POST {path} with a body that is not "
        f"a JSON object: {raw[:200]!r}"
    )
    # A 4xx without our JSON (a proxy's page, a wrong base URL) is still final: do not retry it.
    if 400 <= status < 500:
        raise GatewayError(message)
    raise GatewayUnavailable(message)


def _unexpected(status: int, answer: dict[str, Any], what: str) -> GatewayError:
    """A 4xx means the request itself was refused (final); any other status is malformed."""
    if 400 <= status < 500:
        return GatewayError(
            f"the payment gateway refused the {what} ({status}): {answer.get('error', answer)}"
        )
    return GatewayUnavailable(f"unexpected answer {status} to the {what}: {answer}")

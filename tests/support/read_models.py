"""Reading the eventually consistent read models over HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp


async def customer_lists(
    session: aiohttp.ClientSession,
    api: str,
    expected: dict[str, dict[str, str]],
    within: float = 120.0,
) -> dict[str, dict[str, str]]:
    """Each customer's listed orders (order id to status), read from ``api`` (".../api/v1")
    until every list shows the statuses in ``expected`` (customer id to order id to status) or
    ``within`` seconds have passed.

    A customer's list is a search of the orders index, so it trails the order documents by
    the search sink's batch and the index's refresh, and after a worker's crash by its
    recovery and backlog. It must converge; the caller asserts that it did.
    """
    deadline = time.monotonic() + within
    listed: dict[str, dict[str, str]] = {}
    pending = set(expected)
    while True:
        for customer_id in sorted(pending):
            url = f"{api}/customers/{customer_id}/orders"
            async with session.get(url) as response:
                assert response.status == 200, (url, response.status, await response.text())
                listing = await response.json()
            listed[customer_id] = {o["order_id"]: o["status"] for o in listing["orders"]}
        pending = {
            customer_id
            for customer_id, orders in expected.items()
            if any(listed[customer_id].get(k) != v for k, v in orders.items())
        }
        if not pending or time.monotonic() > deadline:
            return listed
        await asyncio.sleep(0.5)

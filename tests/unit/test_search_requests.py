"""A search's parameters are the client's to get right: whatever they hold, the answer is a
4xx problem, never a 500."""

from __future__ import annotations

from orderflow.views import search
from tests.support import auth
from tests.support.views import call


async def test_a_date_with_no_day_after_it_is_a_422_problem() -> None:
    # to=DATE means up to the end of that day: 9999-12-31 has no next day to stop before.
    answer = await call(
        search.OrderSearch, "GET", "/api/v1/orders/search?to=9999-12-31", {}, auth.service()
    )
    assert (answer.status, answer.content_type) == (422, "application/problem+json")
    assert answer.body["errors"] == [{"field": "to", "message": "a date before 9999-12-31"}]

"""Commands accepted over HTTP go through the intake: stored in PostgreSQL with their outbox
row (and Idempotency-Key record) before the client hears 2xx; the relay publishes them.

No view produces to Kafka itself: a request never waits on the broker, an accepted command
survives a broker outage, and (with exactly_once) no message is sent outside a transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.web import Request, Response

from orderflow import intake, schemas
from orderflow.db import DatabaseUnavailable
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_bytes_response

log = logging.getLogger(__name__)


async def accept_command(
    view: ApiView,
    request: Request,
    *,
    record: schemas.Message,
    topic: str,
    key: str,
    aggregate_id: str,
    scope: str,
    body: Any,
    answer: intake.Answer,
    row: intake.IntakeRow | None = None,
) -> Response:
    """Store ``record`` for ``topic`` (keyed ``key``) durably, honouring Idempotency-Key.

    ``aggregate_id`` orders the outbox: commands of one aggregate are published in order.
    """
    settings = view.platform.settings
    header = request.headers.get("Idempotency-Key")
    try:
        idempotency = (
            intake.IdempotencyKey.of(header, scope, request.method, request.url.path, body)
            if header is not None
            else None
        )
        stored = await intake.accept(
            await view.platform.database.pool(),
            answer=answer,
            messages=[intake.OutboxMessage.of(record, settings.topic(topic), key, aggregate_id)],
            intake=row,
            idempotency=idempotency,
            key_ttl=settings.idempotency_key_ttl,
            acquire_timeout=settings.database_timeout,
        )
    except intake.KeyInFlight as error:
        raise Problem(409, str(error)) from None
    except intake.KeyReused as error:
        raise Problem(422, str(error)) from None
    except intake.IdempotencyError as error:
        raise Problem(400, str(error)) from None
    except DatabaseUnavailable as error:
        # The reason (hosts, driver errors) goes to the log, not to the client.
        log.warning("a command was not accepted: %s", error)
        detail = "the command was not accepted: the database is unavailable; retry later"
        raise Problem(503, detail) from None
    headers = dict(stored.headers)
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_bytes_response(view, stored.body, stored.status, headers)

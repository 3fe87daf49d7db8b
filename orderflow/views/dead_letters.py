"""Admin API of the dead-letter topics: list, show, replay (all or a filtered set)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faust.web import Request, Response

from orderflow.resilience.dlq import is_dead_letter_topic
from orderflow.resilience.dlq_store import Selection, dead_letter_topics, read, replay
from orderflow.views.access import ADMIN, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response, read_json


def _moment(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise Problem(400, f"{name} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.astimezone()


MAX_FILTER_LENGTH = 200
MAX_RECORDS = 1000
_FILTERS = {
    "error_type": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
    "key": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
    "since": {"type": "string", "maxLength": MAX_FILTER_LENGTH, "description": "ISO 8601"},
    "until": {"type": "string", "maxLength": MAX_FILTER_LENGTH, "description": "ISO 8601"},
}
REPLAY_SCHEMA = {"type": "object", "properties": {**_FILTERS, "dry_run": {"type": "boolean"}}}


def filter_parameters() -> list[dict[str, Any]]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_RECORDS, "default": 50}
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in {**_FILTERS, "limit": limit}.items()
    ]


def _text(source: Any, name: str) -> str | None:
    value = source.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_FILTER_LENGTH:
        raise Problem(422, f"{name} must be a string of at most {MAX_FILTER_LENGTH} characters")
    return value


def _selection(source: Any) -> Selection:
    return Selection(
        error_type=_text(source, "error_type") or None,
        key=_text(source, "key"),
        since=_moment(source.get("since"), "since"),
        until=_moment(source.get("until"), "until"),
    )


def _own(view: ApiView, topic: str) -> str:
    """``topic`` if it is one of this deployment's dead-letter topics, else a 404 problem:
    the admin API reads and replays those, not any topic of the cluster."""
    if not is_dead_letter_topic(topic, view.platform.settings.topic_prefix):
        raise Problem(404, f"{topic} is not a dead-letter topic of this deployment")
    return topic


class DeadLetterTopics(ApiView):
    operations = serves(get=Operation("Every dead-letter topic and its size", ADMIN, "admin"))

    async def get(self, request: Request) -> Response:
        settings = self.platform.settings
        every = await dead_letter_topics(settings.bootstrap_servers, settings.topic_prefix)
        own = [t for t in every if is_dead_letter_topic(t["topic"], settings.topic_prefix)]
        return json_response(self, {"topics": own})


class DeadLetterRecords(ApiView):
    operations = serves(
        get=Operation(
            "Dead letters of a topic, filtered",
            ADMIN,
            "admin",
            query=filter_parameters,
            errors=(400, 404, 422),
        )
    )

    async def get(self, request: Request, topic: str) -> Response:
        _own(self, topic)
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_RECORDS:
            raise Problem(400, f"limit must be an integer from 1 to {MAX_RECORDS}")
        try:
            letters = await read(
                self.platform.settings.bootstrap_servers, topic, _selection(request.query), limit
            )
        except LookupError as error:
            raise Problem(404, str(error)) from None
        return json_response(self, {"topic": topic, "records": [x.to_json() for x in letters]})


class DeadLetterReplay(ApiView):
    operations = serves(
        post=Operation(
            "Replay dead letters to their origin topic (or a dry run)",
            ADMIN,
            "admin",
            body=lambda: REPLAY_SCHEMA,
            body_required=False,
            errors=(400, 404, 413, 415, 422),
        )
    )

    async def post(self, request: Request, topic: str) -> Response:
        _own(self, topic)
        body = await read_json(self, request, required=False)
        if not isinstance(body, dict):
            raise Problem(422, "the body must be an object of filters and dry_run")
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise Problem(422, "dry_run must be true or false")
        try:
            letters = await replay(
                self.platform.settings.bootstrap_servers, topic, _selection(body), dry_run=dry_run
            )
        except LookupError as error:
            raise Problem(404, str(error)) from None
        return json_response(
            self,
            {"topic": topic, "dry_run": dry_run, "replayed": [x.to_json() for x in letters]},
        )


ROUTES = {
    "/api/v1/admin/dlq": DeadLetterTopics,
    "/api/v1/admin/dlq/{topic}": DeadLetterRecords,
    "/api/v1/admin/dlq/{topic}/replay": DeadLetterReplay,
}

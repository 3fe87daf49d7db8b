"""Admin API of the dead-letter topics: list, show, replay (all or a filtered set)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from faust.web import Request, Response

from orderflow.resilience.dlq import is_dead_letter_topic
from orderflow.resilience.dlq_store import Selection, dead_letter_topics, read, replay
from orderflow.views.access import ADMIN, Operation, serves
from orderflow.views.base import ApiView
from orderflow.views.problems import Problem, json_response, read_json

# A time as the filters take it: an ISO 8601 date, or date and time (to the minute, second or
# microsecond) with an optional UTC offset; a time without an offset is UTC. The expression
# admits only days that exist (29 February aside, which it leaves out), so that whatever it
# admits, the parser reads.
_YEAR = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_DAY = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    "|(?:0[13578]|1[02])-31)"
)
_TIME = (
    "T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,6})?)?"
    "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)
TIME_PATTERN = f"^{_YEAR}-{_DAY}(?:{_TIME})?$"
_TIME_RE = re.compile(TIME_PATTERN.removeprefix("^").removesuffix("$"))


def _moment(source: Any, name: str) -> datetime | None:
    if name not in source:
        return None
    value = source.get(name)
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise Problem(
            400, f"{name} must be an ISO 8601 date or time, e.g. 2026-11-21 or 2026-11-21T10:00Z"
        )
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


MAX_FILTER_LENGTH = 200
MAX_RECORDS = 1000
_TIME_SCHEMA = {
    "type": "string",
    "maxLength": 40,
    "pattern": TIME_PATTERN,
    "description": "ISO 8601 date or time (UTC without an offset)",
}
_FILTERS = {
    "error_type": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
    "key": {"type": "string", "maxLength": MAX_FILTER_LENGTH},
    "since": _TIME_SCHEMA,
    "until": _TIME_SCHEMA,
}
REPLAY_SCHEMA = {"type": "object", "properties": {**_FILTERS, "dry_run": {"type": "boolean"}}}


def filter_parameters() -> list[dict[str, Any]]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_RECORDS, "default": 50}
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in {**_FILTERS, "limit": limit}.items()
    ]


def _text(source: Any, name: str) -> str | None:
    if name not in source:
        return None
    value = source.get(name)
    if not isinstance(value, str) or len(value) > MAX_FILTER_LENGTH:
        raise Problem(422, f"{name} must be a string of at most {MAX_FILTER_LENGTH} characters")
    return value


def _selection(source: Any) -> Selection:
    return Selection(
        error_type=_text(source, "error_type") or None,
        key=_text(source, "key"),
        since=_moment(source, "since"),
        until=_moment(source, "until"),
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

"""MongoDB collections of the read side: versioned upserts by id and a name pointer.

Each entity's documents live in a collection generation (``<app>.orders.000001``, ...); a
pointer document in ``<app>.projections`` names the live one, and readers and the sinks follow
it (re-read at most every ``POINTER_TTL`` seconds). A rebuild fills the next generation and
moves the pointer.

A write is one upsert per document, filtered on its id and on ``version < new``: an absent
document is inserted, an older one replaced, and a newer or equal one makes the upsert try an
insert that the unique ``_id`` refuses (E11000), which says the store already has it. Nothing
is read first, so a write costs the same however many documents the collection holds (on
FerretDB's PostgreSQL backend only with the id index of deploy/local/ferretdb/id-index.sql).

FerretDB 1.24 stops an unordered multi-statement update at its first error, a stale version
included, and reports a wrong index for it (it ignores ``ordered``), so a command whose answer
holds any error is sent again one statement at a time: every statement is idempotent, and
each refusal is then its own document's. Replays are where stale versions come from, so the
steady state sends one command per ``WRITE_CHUNK`` documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from orderflow.projections.stores import Document, Rejection, StoreUnavailable

POINTER_TTL = 1.0
# Statements per write command. FerretDB holds a backend connection per statement until the
# command ends and hangs for good once its pool is used up, so commands stay small and a
# process sends one at a time (``write_lock``).
WRITE_CHUNK = 10
DUPLICATE_KEY = 11000  # an upsert met a newer or equal version of its document
# Codes that refuse the document itself (its shape or size), whatever the store's state:
# BadValue, FailedToParse, TypeMismatch, DollarPrefixedFieldName, InvalidIdField,
# DocumentValidationFailure, KeyTooLong, BSONObjectTooLarge (two codes).
REFUSED_FOR_GOOD = frozenset({2, 9, 14, 52, 53, 121, 17280, 10334, 17419})

INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    "orders": [
        [("customer_id", 1), ("placed_at", -1)],
        [("status", 1), ("updated_at", -1)],
    ],
    "products": [[("category", 1)], [("deleted", 1), ("in_stock", 1)]],
}


async def guarded(call: Any) -> Any:
    try:
        return await call
    except ConnectionFailure as error:
        raise StoreUnavailable(f"MongoDB is unreachable: {error}") from error
    except (DuplicateKeyError, OperationFailure):
        raise
    except PyMongoError as error:
        if getattr(error, "timeout", False):
            raise StoreUnavailable(f"MongoDB timed out: {error}") from error
        raise


class NotPrepared(StoreUnavailable):
    """No worker has prepared the projection's collections yet."""


def _generation_name(prefix: str, entity: str, generation: int) -> str:
    return f"{prefix}.{entity}.{generation:06d}"


class MongoCollection:
    """One entity's collection generations behind its pointer."""

    def __init__(
        self, database: Any, prefix: str, entity: str, write_lock: asyncio.Lock | None = None
    ) -> None:
        self.database = database
        self.write_lock = write_lock or asyncio.Lock()
        self.prefix = prefix
        self.entity = entity
        self.pointers = database[f"{prefix}.projections"]
        self._live: tuple[str, float] | None = None

    async def prepare(self) -> None:
        first = _generation_name(self.prefix, self.entity, 1)
        pointer = {"_id": self.entity, "collection": first, "generation": 1}
        with contextlib.suppress(DuplicateKeyError):  # another worker (or an earlier start)
            await guarded(self.pointers.insert_one(pointer))
        await self._index(await self.live(refresh=True))

    async def _index(self, name: str) -> None:
        for keys in INDEXES[self.entity]:
            await guarded(self.database[name].create_index(keys))

    async def live(self, *, refresh: bool = False) -> str:
        if self._live is not None and not refresh and time.monotonic() < self._live[1]:
            return self._live[0]
        pointer = await guarded(self.pointers.find_one({"_id": self.entity}))
        if pointer is None:
            raise NotPrepared(f"the {self.entity} projection is not prepared yet")
        name = str(pointer["collection"])
        self._live = (name, time.monotonic() + POINTER_TTL)
        return name

    async def write(
        self, documents: Sequence[Document], target: str | None = None
    ) -> list[Rejection]:
        name = target or await self.live()
        rejections: list[Rejection] = []
        for start in range(0, len(documents), WRITE_CHUNK):
            chunk = documents[start : start + WRITE_CHUNK]
            errors = await self._upsert(name, chunk)
            if len(chunk) == 1:
                rejections.extend(self._refusals(chunk, errors))
            elif errors:  # which statements ran is unknown: each again, alone
                for document in chunk:
                    rejections.extend(
                        self._refusals([document], await self._upsert(name, [document]))
                    )
        return rejections

    async def _upsert(self, name: str, documents: Sequence[Document]) -> list[dict[str, Any]]:
        """Send one update command of versioned upserts; returns its write errors."""
        updates = [
            {
                "q": {"_id": d.id, "version": {"$lt": d.version}},
                "u": {"_id": d.id, **d.body, "version": d.version},
                "upsert": True,
            }
            for d in documents
        ]
        async with self.write_lock:
            answer = await guarded(self.database.command("update", name, updates=updates))
        if answer.get("writeConcernError"):
            raise StoreUnavailable(f"MongoDB update: {answer['writeConcernError']}")
        errors: list[dict[str, Any]] = answer.get("writeErrors") or []
        return errors

    @staticmethod
    def _refusals(documents: Sequence[Document], errors: list[dict[str, Any]]) -> list[Rejection]:
        """The refusals of a one-document command: a stale version is none, a document the
        store can never take is one, anything else is the store's trouble (retried)."""
        refusals: list[Rejection] = []
        for error in errors:
            code, message = error.get("code"), str(error.get("errmsg"))
            if code == DUPLICATE_KEY:
                continue
            if code not in REFUSED_FOR_GOOD:
                raise StoreUnavailable(f"MongoDB update failed ({code}): {message}")
            refusals.extend(Rejection(d.id, f"MongoDB {code}: {message}") for d in documents)
        return refusals

    async def count(self, target: str | None = None) -> int:
        name = target or await self.live()
        # The collection's own count: a count of documents matching {} is a scan of the whole
        # collection on FerretDB (minutes for a few hundred thousand documents).
        return int(await guarded(self.database[name].estimated_document_count()))

    async def versions(self, ids: Sequence[str]) -> dict[str, int]:
        # One find by _id each: served by the id index (a $in is not, on FerretDB 1.x).
        try:
            collection = self.database[await self.live()]
        except NotPrepared:
            return {}  # nothing was ever projected
        found: dict[str, int] = {}
        for id in ids:
            held = await guarded(collection.find_one({"_id": id}, {"version": 1}))
            if held is not None:
                found[id] = int(held.get("version", -1))
        return found

    async def get(self, id: str) -> dict[str, Any] | None:
        found = await guarded(self.database[await self.live()].find_one({"_id": id}))
        return dict(found) if found is not None else None

    async def new_generation(self) -> str:
        pointer = await guarded(self.pointers.find_one({"_id": self.entity}))
        names = await guarded(self.database.list_collection_names())
        base = f"{self.prefix}.{self.entity}."
        suffixes = [n.removeprefix(base) for n in names if n.startswith(base)]
        used = [int(suffix) for suffix in suffixes if suffix.isdigit()]
        generation = max([*used, int(pointer["generation"]) if pointer else 0]) + 1
        name = _generation_name(self.prefix, self.entity, generation)
        await guarded(self.database.create_collection(name))
        await self._index(name)
        return name

    async def switch(self, target: str) -> str:
        previous = await self.live(refresh=True)
        generation = int(target.rsplit(".", 1)[1])
        await guarded(
            self.pointers.replace_one(
                {"_id": self.entity},
                {"_id": self.entity, "collection": target, "generation": generation},
            )
        )
        self._live = None
        return previous

    async def drop(self, target: str) -> None:
        await guarded(self.database.drop_collection(target))

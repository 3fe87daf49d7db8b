"""MongoDB collections of the read side: version-conditional writes and a name pointer.

Each entity's documents live in a collection generation (``<app>.orders.000001``, ...); a
pointer document in ``<app>.projections`` names the live one, and readers and the sinks follow
it (re-read at most every ``POINTER_TTL`` seconds). A rebuild fills the next generation and
moves the pointer.

A write never lets an older or equal version replace a newer one: the batch's current versions
are read first, absent documents are inserted and present ones replaced with a filter on
``version < new``, so a racing writer can only make the replacement match nothing. (Both are
plain commands; FerretDB reports the wrong index for errors in a multi-statement write, so
the store avoids relying on per-statement errors.)
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
            raise StoreUnavailable(f"the {self.entity} projection is not prepared yet")
        name = str(pointer["collection"])
        self._live = (name, time.monotonic() + POINTER_TTL)
        return name

    async def write(
        self, documents: Sequence[Document], target: str | None = None
    ) -> list[Rejection]:
        name = target or await self.live()
        collection = self.database[name]
        ids = [document.id for document in documents]
        held = {
            found["_id"]: found.get("version", -1)
            async for found in collection.find({"_id": {"$in": ids}}, {"version": 1})
        }
        replacements = [
            {
                "q": {"_id": d.id, "version": {"$lt": d.version}},
                "u": {"_id": d.id, **d.body, "version": d.version},
            }
            for d in documents
            if d.id in held and held[d.id] < d.version
        ]
        inserts = [
            {"_id": d.id, **d.body, "version": d.version} for d in documents if d.id not in held
        ]
        for start in range(0, len(replacements), WRITE_CHUNK):
            chunk = replacements[start : start + WRITE_CHUNK]
            await self._command("update", name, updates=chunk, ordered=False)
        for start in range(0, len(inserts), WRITE_CHUNK):
            chunk = inserts[start : start + WRITE_CHUNK]
            answer = await self._command(
                "insert", name, documents=chunk, ordered=False, check=False
            )
            if answer.get("writeErrors"):
                # Someone inserted some of them meanwhile: write those one by one, versioned.
                racing: set[str] = {str(document["_id"]) for document in chunk}
                await self._insert_each(collection, [d for d in documents if d.id in racing])
        return []

    async def _insert_each(self, collection: Any, documents: Sequence[Document]) -> None:
        for document in documents:
            body = {"_id": document.id, **document.body, "version": document.version}
            try:
                async with self.write_lock:
                    await guarded(collection.insert_one(body))
            except DuplicateKeyError:
                async with self.write_lock:
                    await guarded(
                        collection.replace_one(
                            {"_id": document.id, "version": {"$lt": document.version}}, body
                        )
                    )

    async def _command(self, verb: str, name: str, *, check: bool = True, **fields: Any) -> Any:
        async with self.write_lock:
            answer = await guarded(self.database.command(verb, name, **fields))
        errors = answer.get("writeErrors") or []
        if check and errors:
            raise StoreUnavailable(f"MongoDB {verb} failed: {errors[0].get('errmsg')}")
        if answer.get("writeConcernError"):
            raise StoreUnavailable(f"MongoDB {verb}: {answer['writeConcernError']}")
        return answer

    async def count(self, target: str | None = None) -> int:
        name = target or await self.live()
        return int(await guarded(self.database[name].count_documents({})))

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

"""What a projection's store does, whichever it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orderflow.resilience.retry import TransientError


@dataclass(frozen=True, slots=True)
class Document:
    """One document to write: its id, the version of the last event applied, the body."""

    id: str
    version: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document the store refused for good (it will never accept it as it is)."""

    id: str
    reason: str


class StoreUnavailable(TransientError):
    """The store is down, slow or refusing for now: the write is retried."""


class RejectedByStore(Exception):
    """The reason a document went to the DLQ: the store refused it for good."""


class Store(Protocol):
    async def prepare(self) -> None:
        """Create what readers and writers need (index and alias, collection and indexes)."""

    async def write(
        self, documents: Sequence[Document], target: str | None = None
    ) -> list[Rejection]:
        """Write ``documents`` (newer versions only) to the live target or to ``target``."""

    async def count(self, target: str | None = None) -> int: ...

    async def versions(self, ids: Sequence[str]) -> dict[str, int]:
        """The stored version of each of ``ids`` that the live target holds (each read by
        its id, so the cost does not depend on how many documents the store holds)."""

    async def get(self, id: str) -> dict[str, Any] | None:
        """A stored document by id (with its version), from the live target."""

    async def live(self) -> str:
        """The name of the index or collection readers read now."""

    async def new_generation(self) -> str:
        """Create an empty index or collection for a rebuild and return its name."""

    async def switch(self, target: str) -> str:
        """Make ``target`` the live one; returns the one it replaced."""

    async def drop(self, target: str) -> None: ...

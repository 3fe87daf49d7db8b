"""A typed face over a Faust table whose values are bytes encoded by orderflow itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from aiokafka.partitioner import murmur2

T = TypeVar("T")


class TypedTable(Generic[T]):
    """Reads and writes values of type ``T`` through explicit encode/decode functions.

    Values are stored as bytes (``value_serializer="raw"``), encoded with orjson, so the
    changelog holds plain JSON that any tool can read, and no Faust model machinery runs on
    the hot path.
    """

    def __init__(
        self,
        table: Any,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        *,
        partition_key: Callable[[str], str] = lambda key: key,
    ) -> None:
        self.table = table
        self._encode = encode
        self._decode = decode
        self._partition_key = partition_key

    @property
    def name(self) -> str:
        return str(self.table.name)

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def partition_of(self, key: str) -> int:
        """The partition that holds ``key``: where the producer of the source topic put it.

        Source topics have string keys partitioned by Kafka's default partitioner (murmur2 of
        the UTF-8 key), and a table's changelog partition is its source event's partition;
        ``partition_key`` maps a table key to the source key it was written under.
        """
        hashed: int = murmur2(self._partition_key(key).encode())
        return (hashed & 0x7FFFFFFF) % int(self.table.partitions)

    def get(self, key: str) -> T | None:
        raw = self.table.get(key)
        return None if raw is None else self._decode(raw)

    def __setitem__(self, key: str, value: T) -> None:
        self.table[key] = self._encode(value)

    def __delitem__(self, key: str) -> None:
        if key in self.table:
            del self.table[key]

    def __iter__(self) -> Iterator[str]:
        """The keys, without decoding a value."""
        yield from self.table.keys()

    def __contains__(self, key: object) -> bool:
        return key in self.table

    def items(self) -> Iterator[tuple[str, T]]:
        for key, raw in self.table.items():
            yield key, self._decode(raw)

    def raw_json(self, key: str) -> bytes | None:
        """The stored JSON of one key, as it is in the changelog."""
        raw = self.table.get(key)
        return None if raw is None else bytes(raw)

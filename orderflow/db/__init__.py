"""PostgreSQL: the connection pool and the schema migrations."""

from __future__ import annotations

import asyncio

import asyncpg

from orderflow.errors import OrderflowError
from orderflow.settings import Settings


class DatabaseUnavailable(OrderflowError):
    """PostgreSQL could not be reached or did not answer in time."""


# asyncpg raises these when the server is down, restarting, shutting down or unreachable, and
# when the schema has not been migrated: in each case the request cannot be served now.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.UndefinedTableError,
)


class Database:
    """A worker's connection pool, opened on first use.

    A worker starts and processes Kafka while PostgreSQL is down; requests that need the
    database answer 503 until it is back, and the next request opens the pool.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    pool = await create_pool(self.settings)
                    if self.settings.database_migrate:
                        await _migrate(pool)
                    self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _migrate(pool: asyncpg.Pool) -> None:
    from orderflow.db.migrate import migrate

    async with pool.acquire() as connection:
        await migrate(connection)


async def _no_session_state(connection: asyncpg.Connection) -> None:
    """How a connection is reset when it goes back to the pool: not at all, beyond the rollback
    of an open transaction that asyncpg always makes. The default reset (a round trip per use
    that closes cursors, unlistens, resets settings and releases session advisory locks) undoes
    nothing orderflow does: pool connections only run statements and transactions, take
    transaction-scoped locks only, and the relay LISTENs on a connection of its own."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A bounded pool: requests wait at most ``database_timeout`` for a connection or a query."""
    try:
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.database_pool_size,
            timeout=settings.database_timeout,  # to connect
            command_timeout=settings.database_timeout,  # per query
            max_inactive_connection_lifetime=300,
            reset=_no_session_state,
        )
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {error}") from error
    assert pool is not None
    return pool

"""Async database engines and the unit of work.

One place commits: the request's or the consumer's `UnitOfWork`. Service code receives the
session, adds and flushes, and never commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import DateTime, MetaData, Table, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from shared.clock import as_utc

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


K = TypeVar("K", bound=Hashable)

#: Values per IN list: below every driver's bound-parameter limit (asyncpg: 32,767; SQLite: 32,766).
IN_LIST_MAX = 5000


def chunks(values: Iterable[K], size: int = IN_LIST_MAX) -> Iterator[list[K]]:
    """The distinct values, in order, in lists of at most `size` for `column.in_(chunk)`."""
    unique = list(dict.fromkeys(values))
    for i in range(0, len(unique), size):
        yield unique[i : i + size]


class UtcDateTime(TypeDecorator[datetime]):
    """Every timestamp column: written in UTC, read back aware (UTC) on both dialects.

    PostgreSQL's timestamptz already answers aware; SQLite stores naive UTC text and answers naive,
    which then reached the wire without an offset (`2026-12-01T12:54:06.553454`, not RFC 3339). Fixed
    here, at the column, so every read path (ORM, Core, read models, orjson responses) gets it at once
    rather than each response schema converting its own fields."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, sqlite_cache_mb: int = 16, sqlite_mmap_mb: int = 0, **kwargs: Any) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite` or `postgresql+asyncpg` with the project's defaults.

    On SQLite, each pooled connection has a page cache of `sqlite_cache_mb` and reads the file through
    a memory map of up to `sqlite_mmap_mb` (`ServiceSettings`): both count in the process's memory."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, json_serializer=_json_dumps, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The driver's own implicit BEGIN is turned off; `_begin_immediate` below starts every
            # transaction instead (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
            dbapi_conn.isolation_level = None
            # WAL lets readers run beside the single writer; NORMAL is durable across process crashes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            # The page cache (a negative size is in KiB) and memory-mapped reads keep the indexes hot.
            cur.execute(f"PRAGMA cache_size=-{int(sqlite_cache_mb) * 1024}")
            cur.execute(f"PRAGMA mmap_size={int(sqlite_mmap_mb) * 1024 * 1024}")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # Take the write lock when the transaction starts. A deferred transaction that reads and then
            # writes fails at once with "database is locked" if another writer committed meanwhile (the
            # busy timeout cannot help it); an immediate one waits its turn. SQLite has one writer anyway.
            # A unit that only reads (`Database.reader`) takes no lock: WAL gives it a snapshot beside
            # the writer, so the relay's reads do not queue behind (or hold up) the service's writes.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, json_serializer=_json_dumps, **kwargs)


#: The execution option of `Database.reader`'s engine: its transactions only read.
READ_ONLY = "qc_read_only"

#: Set in a connection's `info` once its current transaction has written (see `track_writes`).
_WROTE = "qc_wrote"
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE"})


def track_writes(engine: AsyncEngine) -> None:
    """Mark each transaction that executes an INSERT, UPDATE or DELETE, so a unit of work can tell
    whether leaving without commit loses writes (`UnitOfWork.has_uncommitted_writes`).

    A cursor-level event sees every statement, the driver-level executemany of the bulk paths too,
    and costs one prefix test per statement, not per row. The mark lives in the pooled connection's
    `info` and is cleared when the connection's next transaction begins.
    """

    @event.listens_for(engine.sync_engine, "begin")
    def _clear(conn: Any) -> None:
        conn.info.pop(_WROTE, None)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _mark(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip()[:6].upper() in _WRITE_VERBS:
            conn.info[_WROTE] = True


class Database:
    """An engine and its session factory; built in a service's lifespan, never at import."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        track_writes(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
        )
        self._on_unit_of_work: list[Callable[[UnitOfWork], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def on_unit_of_work(self, hook: Callable[[UnitOfWork], None]) -> None:
        """Call `hook(uow)` on each new unit of work (the audit record registers its `before_commit`)."""
        self._on_unit_of_work.append(hook)

    def unit_of_work(self) -> UnitOfWork:
        uow = UnitOfWork(self.sessions())
        for hook in self._on_unit_of_work:
            hook(uow)
        return uow

    def reader(self) -> UnitOfWork:
        """A unit of work that only reads: on SQLite its transaction takes no write lock (a write in it
        would fail, not wait). On PostgreSQL it is an ordinary unit of work."""
        return UnitOfWork(self._read_sessions())

    async def dispose(self) -> None:
        await self.engine.dispose()


class UnitOfWork:
    """Wraps one session: the only place that commits.

    Leaving the block without `commit()` (or with an exception) rolls everything back, so a
    failed request or consumer batch changes nothing.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.committed = False
        self._after_commit: list[Any] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self.committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    def after_commit(self, callback: Any) -> None:
        """Run `callback()` once the transaction has committed (e.g. wake the outbox relay)."""
        self._after_commit.append(callback)

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await `callback()` in the transaction just before it commits (e.g. add the audit row)."""
        self._before_commit.append(callback)

    async def commit(self) -> None:
        for before in self._before_commit:
            await before()
        await self.session.commit()
        self.committed = True
        for callback in self._after_commit:
            callback()

    async def has_uncommitted_writes(self) -> bool:
        """Whether the open transaction executed an INSERT, UPDATE or DELETE that no commit has kept
        (only on a `Database` engine, which tracks writes): leaving now would silently drop them."""
        if not self.session.in_transaction():
            return False
        conn = await self.session.connection()
        return bool(conn.sync_connection is not None and conn.sync_connection.info.get(_WROTE))


def dialect_insert(session: AsyncSession) -> Any:
    """`insert` of the session's dialect, for `on_conflict_do_*` (SQLite and PostgreSQL spell it alike)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def insert_all(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT the rows through Core as one executemany (never a statement per row through the ORM);
    nothing when there are none. The hot paths go further: shared/executemany.py."""
    if rows:
        await session.execute(insert(table), list(rows))

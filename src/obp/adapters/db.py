"""The database port on SQLAlchemy 2 async: SQLite (embedded) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

from obp.kernel.clock import utcnow
from obp.kernel.errors import ConfigurationError, Unavailable
from obp.kernel.events import Event
from obp.kernel.tables import outbox

_WRITE_OPTION = "obp_write"

# Errors that mean "the database cannot be reached or is overloaded", not "this input is bad".
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    OSError,
)

log = structlog.get_logger("obp.db")


class Database:
    """An async engine plus the units of work the service layer opens on it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._commit_listeners: list[Callable[[Sequence[Event]], None]] = []
        # SQLite has one writer at a time: queue writers here instead of in busy-wait loops.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite database."""
        return self.engine.dialect.name == "sqlite"

    def add_commit_listener(self, listener: Callable[[Sequence[Event]], None]) -> None:
        """Call `listener` with the events of every commit that wrote some.

        The relay wakes on it; in-process caches can react at once, before the bus delivers.
        """
        self._commit_listeners.append(listener)

    def unit_of_work(self, *, write: bool = True) -> SqlUnitOfWork:
        """A new unit of work; `write=False` for read-only use cases."""
        return SqlUnitOfWork(self, write=write)

    async def ping(self) -> None:
        """Run `SELECT 1`, or raise `Unavailable`."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except UNAVAILABLE_ERRORS as exc:
            raise self.unavailable(exc) from exc

    def unavailable(self, exc: BaseException) -> Unavailable:
        """The error callers see: the engine's own message goes to the log, not to clients."""
        log.warning("database unavailable", backend=self.backend, reason=_reason(exc))
        return Unavailable(f"the database ({self.backend}) is unavailable; retry later")

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    def _committed_events(self, events: Sequence[Event]) -> None:
        for listener in self._commit_listeners:
            listener(events)


class SqlUnitOfWork:
    """One transaction; events emitted inside it reach the outbox in the same transaction."""

    def __init__(self, database: Database, *, write: bool) -> None:
        self._database = database
        self._write = write
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._events: list[Event] = []
        self._locked = False

    @property
    def connection(self) -> AsyncConnection:
        """The connection repositories use inside this unit of work."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def emit(self, event: Event) -> None:
        """Queue an event for the outbox of this transaction."""
        if self._tx is None:
            raise RuntimeError("emit() outside an open transaction would lose the event")
        self._events.append(event)

    async def commit(self) -> None:
        """Write queued events to the outbox, then commit."""
        if self._tx is None:
            raise RuntimeError("the unit of work is not open")
        if self._events:
            await self.connection.execute(
                outbox.insert(),
                [
                    {
                        "namespace": e.namespace,
                        "event_id": e.id,
                        "routing_key": e.routing_key,
                        "body": e.to_json(),
                        "created_at": utcnow(),
                    }
                    for e in self._events
                ],
            )
        await self._tx.commit()
        self._tx = None
        if self._events:
            committed, self._events = self._events, []
            self._database._committed_events(committed)

    async def __aenter__(self) -> Self:
        lock = self._database._write_lock
        if self._write and lock is not None:
            await lock.acquire()
            self._locked = True
        try:
            conn = await self._database.engine.connect()
            self._conn = conn
            if self._write:
                self._conn = await conn.execution_options(**{_WRITE_OPTION: True})
            self._tx = await self._conn.begin()
        except BaseException as exc:
            await self._close()
            if isinstance(exc, UNAVAILABLE_ERRORS):
                raise self._database.unavailable(exc) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()
        if isinstance(exc, UNAVAILABLE_ERRORS):
            raise self._database.unavailable(exc) from exc

    async def _close(self) -> None:
        """Roll back what was not committed, return the connection and free the write lock."""
        try:
            if self._tx is not None:
                with contextlib.suppress(*UNAVAILABLE_ERRORS):
                    await self._tx.rollback()
            if self._conn is not None:
                with contextlib.suppress(*UNAVAILABLE_ERRORS):
                    await self._conn.close()
        finally:
            self._tx = None
            self._conn = None
            self._events.clear()
            self._release()

    def _release(self) -> None:
        if self._locked and self._database._write_lock is not None:
            self._database._write_lock.release()
            self._locked = False


def create_database(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    """Build the database for `url` (`sqlite+aiosqlite://` or `postgresql+asyncpg://`)."""
    parsed = make_url(url)
    # hide_parameters: values never reach error messages and logs (they may be secrets).
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError(
                "OBP_DATABASE_URL: SQLite needs a file path, e.g. sqlite+aiosqlite:///obp-data/obp.db"
            )
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Units of work always end their transaction, so the pool's extra reset-on-return
        # rollback would only cost another hop to aiosqlite's thread.
        engine = create_async_engine(url, pool_reset_on_return=None, **options)
        _configure_sqlite(engine)
    else:
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        engine = create_async_engine(url, **options)
    return Database(engine)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, synchronous=FULL (nothing acknowledged is lost) and BEGIN IMMEDIATE for writers."""

    @sa_event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's legacy transaction control does not).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @sa_event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A writer takes the lock at BEGIN, so two writers can never deadlock upgrading locks.
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__

"""Raw SQLite (stdlib `sqlite3`) doing what OBP's storage does, without OBP around it."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

# The pragmas obp.adapters.db sets on every SQLite connection.
OBP_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

# The namespaces table as migration 0001 creates it on SQLite.
NAMESPACES_DDL = """
CREATE TABLE IF NOT EXISTS namespaces (
    name VARCHAR(63) NOT NULL,
    full_name VARCHAR(200) DEFAULT '' NOT NULL,
    description TEXT DEFAULT '' NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    CONSTRAINT pk_namespaces PRIMARY KEY (name)
)
"""

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER NOT NULL PRIMARY KEY,
    namespace VARCHAR(63) NOT NULL,
    event_id VARCHAR(36) NOT NULL UNIQUE,
    routing_key VARCHAR(255) NOT NULL,
    body BLOB NOT NULL,
    created_at DATETIME NOT NULL,
    due_at DATETIME,
    attempts INTEGER DEFAULT 0 NOT NULL
)
"""

INSERT_NAMESPACE = (
    "INSERT INTO namespaces (name, full_name, description, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (namespace, event_id, routing_key, body, created_at) VALUES (?, ?, ?, ?, ?)"
)


def sqlite_timestamp(moment: datetime | None = None) -> str:
    """A UTC time as SQLAlchemy's SQLite DateTime stores it: `YYYY-MM-DD HH:MM:SS.ffffff`."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S.%f")


def connect(path: Path) -> sqlite3.Connection:
    """A connection with OBP's pragmas, in autocommit mode so BEGIN/COMMIT are explicit."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in OBP_PRAGMAS:
        conn.execute(pragma)
    return conn


def insert_namespaces(path: Path, *, count: int, first: int = 0, outbox: bool = False) -> float:
    """Insert `count` namespace rows, one transaction each; the seconds it took.

    With `outbox`, each transaction also writes an outbox row, as OBP's unit of work does.
    """
    with closing(connect(path)) as conn:
        conn.execute(NAMESPACES_DDL)
        conn.execute(OUTBOX_DDL)
        body = b'{"name":"x","service":"namespace","payload":{}}'
        started = time.perf_counter()
        for n in range(first, first + count):
            now = sqlite_timestamp()
            # BEGIN IMMEDIATE, as OBP's writers do, so the write lock is taken up front.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(INSERT_NAMESPACE, (f"raw-{n}", "", "", now, now))
            if outbox:
                conn.execute(
                    INSERT_OUTBOX, ("raw", f"event-{n}", "raw.namespace.created", body, now)
                )
            conn.execute("COMMIT")
        return time.perf_counter() - started


def seed_namespaces(path: Path, *, names: list[str], batch: int = 10_000) -> float:
    """Insert `names` into an existing OBP database in large transactions; the seconds it took."""
    with closing(connect(path)) as conn:
        started = time.perf_counter()
        for offset in range(0, len(names), batch):
            now = sqlite_timestamp()
            rows = [(name, "", "", now, now) for name in names[offset : offset + batch]]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_NAMESPACE, rows)
            conn.execute("COMMIT")
        return time.perf_counter() - started


def count_rows(path: Path, table: str) -> int:
    """How many rows `table` holds (read-only; `table` is one of ours, never user input)."""
    if table not in ("namespaces", "outbox"):
        raise ValueError(f"unknown table {table!r}")
    with closing(connect(path)) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        return int(count)

"""Optional PostgreSQL runs: throwaway databases on `OBP_BENCH_POSTGRES_URL` and raw inserts."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.engine import make_url

URL_VARIABLE = "OBP_BENCH_POSTGRES_URL"

NAMESPACES_DDL = """
CREATE TABLE namespaces (
    name VARCHAR(63) NOT NULL PRIMARY KEY,
    full_name VARCHAR(200) NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
)
"""


def server_url() -> str | None:
    """The PostgreSQL server to benchmark against, if one is configured."""
    return os.environ.get(URL_VARIABLE, "").strip() or None


def asyncpg_dsn(url: str) -> str:
    """The plain `postgresql://` form asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The `postgresql+asyncpg://` form OBP's settings take."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    """Create an empty database on the server at `url`, yield its URL, then drop it."""
    name = f"obp_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def insert_namespaces(url: str, *, count: int, concurrency: int) -> float:
    """Insert `count` rows, one transaction each, over `concurrency` connections; seconds taken.

    PostgreSQL takes concurrent writers (and groups their WAL flushes), so the baseline uses the
    same number of connections as the load against OBP.
    """
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=concurrency, max_size=concurrency)
    try:
        async with pool.acquire() as conn:
            await conn.execute(NAMESPACES_DDL)
        numbers = itertools.count()

        async def writer() -> None:
            async with pool.acquire() as conn:
                insert = await conn.prepare(
                    "INSERT INTO namespaces (name, full_name, description, created_at, "
                    "updated_at) VALUES ($1, '', '', $2, $2)"
                )
                while (n := next(numbers)) < count:
                    # One statement outside a block: its own transaction, committed on return.
                    await insert.fetch(f"raw-{n}", datetime.now(UTC))

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        return time.perf_counter() - started
    finally:
        await pool.close()

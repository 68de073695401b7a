"""Throwaway PostgreSQL databases on the configured test server, one per test or module."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str) -> str:
    """The plain `postgresql://` form asyncpg itself accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The `postgresql+asyncpg://` form OBP's settings take."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def create_database(server_url: str) -> tuple[str, str]:
    """Create an empty database on the server; its OBP URL and its name."""
    name = f"obp_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return sqlalchemy_url(url), name


async def drop_database(server_url: str, name: str) -> None:
    """Drop a database made by `create_database`, even with connections still open."""
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """An empty database for the duration of the block."""
    url, name = await create_database(server_url)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@contextmanager
def fresh_database_sync(server_url: str) -> Iterator[str]:
    """`fresh_database` for synchronous (e.g. module-scoped) fixtures."""
    url, name = asyncio.run(create_database(server_url))
    try:
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))

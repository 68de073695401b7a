"""Fixtures shared by every test layer: databases on each engine, a migrated platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from obp.adapters import migrate
from obp.adapters.db import Database, create_database
from tests.postgres import fresh_database
from tests.s3 import s3_bucket  # noqa: F401  (a bucket of the test's own, for every layer)
from tests.servers import server_url
from tests.softhsm import softhsm_token  # noqa: F401  (a session fixture for every layer)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own."""
    return f"sqlite+aiosqlite:///{tmp_path / 'obp.db'}"


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database of this test's own (skipped, or failed under CI, if none)."""
    async with fresh_database(server_url("postgres")) as url:
        yield url


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An empty database on each engine in turn."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
    else:
        async with fresh_database(server_url("postgres")) as url:
            yield url


@asynccontextmanager
async def migrated_database(url: str) -> AsyncIterator[Database]:
    """A database at `url` with the schema at head, closed afterwards."""
    db = create_database(url)
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        await db.close()


@pytest_asyncio.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each engine in turn."""
    async with migrated_database(database_url) as db:
        yield db

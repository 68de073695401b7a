"""A real `obp serve` per engine, shared by the end-to-end tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from obp.client import Client
from tests.postgres import fresh_database_sync
from tests.process import ServerProcess
from tests.servers import server_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`obp serve` on the embedded defaults (SQLite) and on PostgreSQL."""
    workdir: Path = tmp_path_factory.mktemp(f"serve-{request.param}")
    env = {"OBP_DATA_DIR": str(workdir / "obp-data"), "OBP_LOG_LEVEL": "info"}
    if request.param == "sqlite":
        with ServerProcess(env=env, cwd=workdir) as process:
            yield process
        return
    with (
        fresh_database_sync(server_url("postgres")) as database_url,
        ServerProcess(env={**env, "OBP_DATABASE_URL": database_url}, cwd=workdir) as process,
    ):
        yield process


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    """An SDK client of the running server."""
    with server.client() as sdk:
        yield sdk

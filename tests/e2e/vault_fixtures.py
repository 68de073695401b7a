"""Real `obp serve` deployments for the vault and secrets end-to-end tests, with their database.

A `Deployment` is one server on one engine plus what a test needs to look behind its back: the
data directory (master key, SQLite file) and direct SQL on its database, to prove what is and
is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from obp.client import Client, Tokens
from tests.postgres import asyncpg_dsn, fresh_database_sync
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import ServerProcess
from tests.servers import server_url
from tests.softhsm import SoftHsmToken

ENGINES = ["sqlite", "postgres"]
# The label prefix `obp serve` gives its root keys on a PKCS#11 token (not configurable).
SERVER_ROOT_KEY_PREFIX = "obp-root-"
T = TypeVar("T")


def unique(prefix: str = "t") -> str:
    """A name no other test uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Deployment:
    """One `obp serve` on one engine, and direct access to its data."""

    engine: str
    workdir: Path
    env: dict[str, str]
    database_url: str | None = None  # PostgreSQL (SQLAlchemy form); None on SQLite
    process: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.process = ServerProcess(env=self._server_env(), cwd=self.workdir)

    def _server_env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {**self.env, **(overrides or {})}
        if self.database_url is not None:
            env["OBP_DATABASE_URL"] = self.database_url
        return env

    def respawn(self, overrides: Mapping[str, str] | None = None) -> None:
        """Stop the server and start it again on the same data and port, settings overridden."""
        self.process.stop()
        self.process = ServerProcess(
            env=self._server_env(overrides), cwd=self.workdir, port=self.process.port
        )
        self.process.start(timeout=30.0)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.process.url

    @property
    def data_dir(self) -> Path:
        """The server's OBP_DATA_DIR."""
        return Path(self.env["OBP_DATA_DIR"])

    @property
    def sqlite_file(self) -> Path:
        """The SQLite database file (only meaningful on the sqlite engine)."""
        return self.data_dir / "obp.db"

    def client(self, tokens: Tokens | None = None) -> Client:
        """A new SDK client (close it), logged in as the global admin, or with `tokens`.

        A sealed vault signs no tokens, so nobody can log in then: pass tokens obtained while
        it was unsealed (they verify with public keys, which need no vault key).
        """
        sdk = Client(self.url, timeout=20.0, tokens=tokens)
        if tokens is None:
            try:
                sdk.login(ADMIN_LOGIN, ADMIN_PASSWORD)
            except BaseException:
                sdk.close()
                raise
        return sdk

    def login(self) -> Tokens:
        """A fresh login of the global admin, to use later (e.g. once the vault is sealed)."""
        with self.client() as sdk:
            assert sdk.tokens is not None
            return sdk.tokens

    def restart(self) -> None:
        """A clean stop, then a start on the same data and port."""
        self.process.stop()
        self.process.start(timeout=30.0)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL with `?` placeholders directly on the database; the rows as tuples."""
        if self.database_url is None:
            connection = sqlite3.connect(self.sqlite_file, timeout=10.0)
            try:
                with connection:
                    return [tuple(row) for row in connection.execute(sql, params).fetchall()]
            finally:
                connection.close()
        numbered = sql
        for index in range(1, len(params) + 1):
            numbered = numbered.replace("?", f"${index}", 1)
        return asyncio.run(_pg_fetch(self.database_url, numbered, params))

    def execute(self, sql: str, *params: Any) -> None:
        """Run a changing statement directly on the database (committed)."""
        self.query(sql, *params)


async def _pg_fetch(url: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return [tuple(row) for row in await connection.fetch(sql, *params)]
    finally:
        await connection.close()


async def _pg_dump(url: str) -> list[bytes]:
    """Every row of every table as JSON text, plus every bytea value as raw bytes."""
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        tables = [
            row["table_name"]
            for row in await connection.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert tables, "the database has no tables"
        dumped: list[bytes] = []
        for table in tables:
            for row in await connection.fetch(
                f'SELECT row_to_json(t)::text FROM "{table}" t'  # noqa: S608
            ):
                dumped.append(str(row[0]).encode())
        for row in await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'bytea'"
        ):
            table, column = row["table_name"], row["column_name"]
            for value in await connection.fetch(
                f'SELECT "{column}" FROM "{table}"'  # noqa: S608
            ):
                if value[0] is not None:
                    dumped.append(bytes(value[0]))
        return dumped
    finally:
        await connection.close()


@contextlib.contextmanager
def purge_held_back(deployment: Deployment, namespace: str) -> Iterator[None]:
    """On PostgreSQL, lock the namespace's data key rows so that its purge waits meanwhile.

    FOR KEY SHARE blocks the purge's DELETE but not updates of other columns, as a purge that
    simply has not run yet would not block them either.

    That makes "the purge runs later, from its event" deterministic; on SQLite (one writer)
    a lock would stop the server's own writes too, so there it does nothing.
    """
    if deployment.database_url is None:
        yield
        return
    loop = asyncio.new_event_loop()
    try:
        connection = loop.run_until_complete(
            asyncpg.connect(asyncpg_dsn(deployment.database_url), timeout=10)
        )
        try:
            loop.run_until_complete(connection.execute("BEGIN"))
            loop.run_until_complete(
                connection.execute(
                    "SELECT key_id FROM vault_data_keys WHERE namespace = $1 FOR KEY SHARE",
                    namespace,
                )
            )
            yield
            loop.run_until_complete(connection.execute("ROLLBACK"))
        finally:
            loop.run_until_complete(connection.close(timeout=10))
    finally:
        loop.close()


def database_contents(deployment: Deployment) -> list[bytes]:
    """Everything the database holds, as byte strings to search.

    SQLite: the raw bytes of the database file and of its -wal and -shm files (including
    free pages). PostgreSQL: every row of every table as JSON text and every bytea raw.
    """
    if deployment.database_url is None:
        files = [
            deployment.sqlite_file.with_name(deployment.sqlite_file.name + suffix)
            for suffix in ("", "-wal", "-shm")
        ]
        return [path.read_bytes() for path in files if path.exists()]
    return asyncio.run(_pg_dump(deployment.database_url))


@contextlib.contextmanager
def deployed(
    engine: str, workdir: Path, *, env: Mapping[str, str] | None = None, start: bool = True
) -> Iterator[Deployment]:
    """A deployment on `engine` in `workdir` (a fresh PostgreSQL database), stopped afterwards."""
    settings = {"OBP_DATA_DIR": str(workdir / "obp-data"), "OBP_LOG_LEVEL": "info", **(env or {})}
    with contextlib.ExitStack() as stack:
        database_url = None
        if engine == "postgres":
            database_url = stack.enter_context(fresh_database_sync(server_url("postgres")))
        deployment = Deployment(
            engine=engine, workdir=workdir, env=settings, database_url=database_url
        )
        stack.callback(lambda: deployment.process.stop())
        if start:
            deployment.process.start(timeout=30.0)
        yield deployment


def wait_for(
    condition: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.1, what: str
) -> T:
    """Poll until `condition()` is truthy (its value), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(name="deployment", scope="module", params=ENGINES)
def deployment_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One `obp serve` per engine for the module, on the file key store.

    Test modules import it as `deployment_fixture`; tests ask for `deployment`.
    """
    with deployed(request.param, tmp_path_factory.mktemp(f"vault-{request.param}")) as running:
        yield running


def bearer(tokens: Tokens | None) -> dict[str, str]:
    """`Authorization` for raw HTTP calls with `tokens` (an SDK client's `tokens`)."""
    assert tokens is not None, "log in first"
    return {"Authorization": f"Bearer {tokens.access_token}"}


@pytest.fixture(name="sdk")
def sdk_fixture(deployment: Deployment) -> Iterator[Client]:
    """An SDK client of the module's server, logged in as the global admin."""
    with deployment.client() as client:
        yield client


@pytest.fixture(name="clean_token")
def clean_token_fixture(softhsm_token: SoftHsmToken) -> Iterator[SoftHsmToken]:
    """The SoftHSM2 token without root keys of `obp serve`, before and after the test.

    Every `obp serve` on the token uses the same labels, and a root rotation destroys the root
    keys its own database does not use: servers of different tests must not share them.
    """
    softhsm_token.purge(SERVER_ROOT_KEY_PREFIX)
    yield softhsm_token
    softhsm_token.purge(SERVER_ROOT_KEY_PREFIX)


def pkcs11_env(token: SoftHsmToken, *, pin: str | None = None) -> dict[str, str]:
    """Settings for `obp serve` on the token (its PIN unless `pin` overrides it)."""
    env = {"OBP_KEYSTORE_URL": token.url, **token.env}
    if pin is not None:
        env["OBP_KEYSTORE_PIN"] = pin
    return env


def move_aside(path: Path) -> Path:
    """Rename `path` next to itself; where it went."""
    aside = path.with_name(path.name + ".aside")
    shutil.move(path, aside)
    return aside

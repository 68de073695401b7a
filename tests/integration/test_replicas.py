"""Two `obp serve` replicas on shared backends behave as one platform.

Both run on one PostgreSQL database, one Redis and one RabbitMQ exchange (the scale-out setup),
listen on different ports and are started at the same moment on an empty database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from alembic.script import ScriptDirectory

from obp.adapters.migrate import alembic_config
from tests.integration.helpers import (
    bus_url,
    delete_exchange,
    log_tail,
    server_env,
    unique_exchange,
)
from tests.postgres import asyncpg_dsn
from tests.process import ServerProcess
from tests.servers import server_url

pytestmark = pytest.mark.slow

API = "/api/v1/namespaces"
RACE_ROUNDS = 20


@dataclass
class Replicas:
    a: ServerProcess
    b: ServerProcess
    database_url: str
    # How far apart the two processes were launched, and how long both took to answer.
    launch_gap: float
    startup_seconds: float


@pytest_asyncio.fixture
async def replicas(tmp_path: Path, postgres_url: str) -> AsyncIterator[Replicas]:
    """Replicas A and B on one fresh database, started concurrently; stopped afterwards."""
    amqp = server_url("amqp")
    exchange = unique_exchange()
    env = server_env(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        cache_url=server_url("redis"),
        bus_url=bus_url(amqp, exchange=exchange),
    )
    a = ServerProcess(env=env, cwd=tmp_path)
    b = ServerProcess(env=env, cwd=tmp_path)
    launched: dict[str, float] = {}

    def start(name: str, server: ServerProcess) -> None:
        launched[name] = time.monotonic()
        server.start(timeout=45.0)

    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            asyncio.to_thread(start, "a", a),
            asyncio.to_thread(start, "b", b),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert not failures, f"a replica did not start next to the other: {failures}"
        yield Replicas(
            a=a,
            b=b,
            database_url=postgres_url,
            launch_gap=abs(launched["a"] - launched["b"]),
            startup_seconds=time.monotonic() - started,
        )
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        await delete_exchange(amqp, exchange)


@pytest_asyncio.fixture
async def clients(replicas: Replicas) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One HTTP client per replica, each with the global admin's token from its replica."""
    on_a, on_b = await asyncio.gather(
        asyncio.to_thread(replicas.a.admin_headers), asyncio.to_thread(replicas.b.admin_headers)
    )
    async with (
        httpx.AsyncClient(base_url=replicas.a.url, timeout=20.0, headers=on_a) as a,
        httpx.AsyncClient(base_url=replicas.b.url, timeout=20.0, headers=on_b) as b,
    ):
        yield a, b


async def listed(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await client.get(API, params={"q": q, "limit": 1000})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_two_replicas_see_each_others_writes(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients

    created = await a.post(API, json={"name": "acme", "full_name": "Acme", "description": "one"})
    assert created.status_code == 201, created.text
    on_b = await b.get(f"{API}/acme")
    assert on_b.status_code == 200, on_b.text
    assert {k: v for k, v in on_b.json().items() if k != "usage"} == created.json()
    assert await listed(b, "acme") == ["acme"]

    updated = await b.patch(f"{API}/acme", json={"full_name": "Acme Corp"})
    assert updated.status_code == 200, updated.text
    on_a = await a.get(f"{API}/acme")
    assert on_a.status_code == 200, on_a.text
    assert on_a.json()["full_name"] == "Acme Corp"
    assert {k: v for k, v in on_a.json().items() if k != "usage"} == updated.json()

    deleted = await a.delete(f"{API}/acme")
    assert deleted.status_code == 204, deleted.text
    gone = await b.get(f"{API}/acme")
    assert gone.status_code == 404, gone.text
    assert await listed(b, "acme") == []
    assert (await b.patch(f"{API}/acme", json={"full_name": "x"})).status_code == 404


async def test_one_name_created_on_both_replicas_at_once_is_created_once(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    # Warm both connections up, so the racing requests leave at the same moment.
    assert (await a.get("/healthz")).status_code == (await b.get("/healthz")).status_code == 200

    outcomes: list[tuple[str, list[int]]] = []
    for round_ in range(RACE_ROUNDS):
        name = f"race-{round_:02d}"
        body = {"name": name, "full_name": f"Race {round_}"}
        on_a, on_b = await asyncio.gather(a.post(API, json=body), b.post(API, json=body))
        outcomes.append((name, [on_a.status_code, on_b.status_code]))
        for response in (on_a, on_b):
            if response.status_code == 409:
                assert response.headers["content-type"].startswith("application/problem+json")
    wrong = [(name, statuses) for name, statuses in outcomes if sorted(statuses) != [201, 409]]
    assert not wrong, f"expected exactly one 201 and one 409 per name: {wrong}"

    names = await listed(a, "race-")
    assert names == sorted(f"race-{round_:02d}" for round_ in range(RACE_ROUNDS))
    assert await listed(b, "race-") == names


async def test_two_replicas_start_at_once_on_one_empty_database(
    replicas: Replicas, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    # Both were launched together on an empty database, and both came up.
    assert replicas.launch_gap < 1.0, f"launched {replicas.launch_gap:.2f} s apart"
    for client, server in zip(clients, (replicas.a, replicas.b), strict=True):
        ready = await client.get("/readyz")
        assert ready.status_code == 200, f"{ready.text}\n{log_tail(server)}"
        assert {name: check["status"] for name, check in ready.json()["checks"].items()} == {
            "database": "ok",
            "cache": "ok",
            "bus": "ok",
            "vault": "ok",
            "blobs": "ok",
        }
        log = server.log_path.read_text(errors="replace")
        assert "Traceback" not in log, log_tail(server)

    # One schema, migrated once to head: one version row, and both replicas can write to it.
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    conn = await asyncpg.connect(asyncpg_dsn(replicas.database_url))
    try:
        versions = [row["version_num"] for row in await conn.fetch("SELECT * FROM alembic_version")]
    finally:
        await conn.close()
    assert versions == [head]
    for index, client in enumerate(clients):
        created = await client.post(API, json={"name": f"replica-{index}"})
        assert created.status_code == 201, created.text
    print(f"both replicas answered {replicas.startup_seconds:.1f} s after a concurrent start")

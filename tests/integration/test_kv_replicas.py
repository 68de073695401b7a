"""Key-value writes on one replica hold on the other: at once with a shared Redis cache, and
through the bus with each replica's own memory cache.

Two `obp serve` replicas share one PostgreSQL database and one RabbitMQ exchange of this test's
own, and the same public URL (the token issuer), as behind a reverse proxy.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import (
    bus_url,
    delete_exchange,
    log_tail,
    server_env,
    unique_exchange,
    wait_until,
)
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import ServerProcess, free_port
from tests.servers import server_url

pytestmark = pytest.mark.slow

ROUNDS = 40
CONVERGENCE_SECONDS = 10.0


@dataclass
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    servers: tuple[ServerProcess, ServerProcess]

    def logs(self) -> str:
        """The end of both servers' logs, for failure messages."""
        return "\n".join(log_tail(server, 1500) for server in self.servers)


@asynccontextmanager
async def _replicas(tmp_path: Path, database_url: str, cache_url: str) -> AsyncIterator[Replicas]:
    amqp = server_url("amqp")
    exchange = unique_exchange()
    env = server_env(
        data_dir=tmp_path / "data",
        database_url=database_url,
        cache_url=cache_url,
        bus_url=bus_url(amqp, exchange=exchange),
        # One issuer for both, as behind a proxy: each accepts the other's tokens.
        public_url=f"http://127.0.0.1:{free_port()}",
    )
    a = ServerProcess(env=env, cwd=tmp_path)
    b = ServerProcess(env=env, cwd=tmp_path)
    try:
        outcomes = await asyncio.gather(
            asyncio.to_thread(a.start, timeout=45.0),
            asyncio.to_thread(b.start, timeout=45.0),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert not failures, f"the replicas did not start: {failures}"
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20.0) as on_a,
            httpx.AsyncClient(base_url=b.url, timeout=20.0) as on_b,
        ):
            token = await on_a.post(
                "/api/v1/namespaces/global/iam/token",
                data={
                    "grant_type": "password",
                    "username": ADMIN_LOGIN,
                    "password": ADMIN_PASSWORD,
                },
            )
            assert token.status_code == 200, token.text
            for client in (on_a, on_b):
                client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            yield Replicas(a=on_a, b=on_b, servers=(a, b))
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        await delete_exchange(amqp, exchange)


async def _namespace(replicas: Replicas) -> str:
    name = f"kv-{uuid.uuid4().hex[:8]}"
    created = await replicas.a.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    return f"/api/v1/namespaces/{name}/kv"


async def test_after_a_write_on_one_replica_the_very_next_read_on_the_other_sees_it(
    tmp_path: Path, postgres_url: str
) -> None:
    async with _replicas(tmp_path, postgres_url, server_url("redis")) as replicas:
        kv = await _namespace(replicas)
        stale: list[str] = []
        for round_ in range(ROUNDS):
            writer, reader = (
                (replicas.a, replicas.b) if round_ % 2 == 0 else (replicas.b, replicas.a)
            )
            # The reader has the current state cached before the write.
            await reader.get(f"{kv}/hot")
            await reader.get(f"{kv}/hot")
            if round_ % 5 == 4:
                deleted = await writer.delete(f"{kv}/hot")
                assert deleted.status_code == 204, deleted.text
                after = await reader.get(f"{kv}/hot")
                if after.status_code != 404:
                    stale.append(f"round {round_}: {after.status_code} after a delete")
                continue
            value = f"round {round_}".encode()
            written = await writer.put(f"{kv}/hot", content=value)
            assert written.status_code in (200, 201), written.text
            after = await reader.get(f"{kv}/hot")
            if after.content != value or after.headers.get("etag") != written.headers["etag"]:
                stale.append(f"round {round_}: {after.status_code} {after.content[:40]!r}")
        assert not stale, f"{len(stale)} of {ROUNDS} reads were stale: {stale}\n{replicas.logs()}"


async def test_with_memory_caches_the_other_replica_converges_through_the_bus_event(
    tmp_path: Path, postgres_url: str
) -> None:
    # Each replica's memory cache is its own: only the `kv.changed` event, broadcast over
    # RabbitMQ, evicts what B cached. So B converges shortly after the write, not at once:
    # eventually consistent by design (a shared Redis gives the read-your-write above).
    async with _replicas(tmp_path, postgres_url, "memory://") as replicas:
        kv = await _namespace(replicas)
        a, b = replicas.a, replicas.b

        async def b_reads(expected: bytes | None) -> bool:
            answer = await b.get(f"{kv}/key")
            if expected is None:
                return answer.status_code == 404
            return answer.status_code == 200 and answer.content == expected

        assert (await a.put(f"{kv}/key", content=b"one")).status_code == 201
        await wait_until(lambda: b_reads(b"one"), within=CONVERGENCE_SECONDS)
        assert await b_reads(b"one")  # cached on B now

        for value in (b"two", b"three", b"four"):
            assert (await a.put(f"{kv}/key", content=value)).status_code == 200
            took = await wait_until(partial(b_reads, value), within=CONVERGENCE_SECONDS)
            print(f"B served {value!r} {took * 1000:.0f} ms after A acknowledged it")
        assert (await a.delete(f"{kv}/key")).status_code == 204
        await wait_until(lambda: b_reads(None), within=CONVERGENCE_SECONDS)
        # And the other way round.
        assert (await b.put(f"{kv}/key", content=b"from b")).status_code == 201
        await a.get(f"{kv}/key")
        assert (await b.put(f"{kv}/key", content=b"from b again")).status_code == 200

        async def a_reads_new() -> bool:
            return (await a.get(f"{kv}/key")).content == b"from b again"

        await wait_until(a_reads_new, within=CONVERGENCE_SECONDS)

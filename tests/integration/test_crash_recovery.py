"""Crash recovery: SIGKILL `obp serve` mid-burst, restart it, and lose nothing acknowledged.

A burst of namespace creations runs from concurrent tasks; once enough of them were
acknowledged (201 received) the whole process group is SIGKILLed while requests are still in
flight. After a restart on the same data, every acknowledged namespace must be there, nothing
that was never requested may appear, and every event committed to the outbox must be published
by the restarted relay, including rows the dead relay had leased but not finished.

To make sure the kill leaves outbox rows behind, the group is frozen (SIGSTOP) first and the
outbox read: if it holds what the test needs the frozen group is SIGKILLed (a crash at exactly
that instant), otherwise it is resumed and frozen again a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aio_pika import ExchangeType

from obp.kernel.events import Event
from tests.integration.helpers import (
    amqp_channel,
    bus_url,
    delete_exchange,
    freeze,
    log_tail,
    server_env,
    thaw,
    unique_exchange,
    wait_until,
)
from tests.postgres import asyncpg_dsn
from tests.process import ServerProcess
from tests.servers import server_url

pytestmark = pytest.mark.slow

API = "/api/v1/namespaces"
# Concurrent creators, and how many acknowledged creations to wait for before the kill.
CREATORS = 16
KILL_AFTER = 150
# A hard stop for the burst, should the kill never come.
MAX_CREATIONS = 5000
BURST_TIMEOUT = 30.0
# How long to keep freezing the server in search of the outbox state a test wants.
FREEZE_WINDOW = 10.0
# A restarted relay publishes at once what its dead predecessor held: on SQLite it clears the
# old leases, on PostgreSQL the dead relay's row locks went with its connection.
DRAIN_TIMEOUT = 20.0


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as seen from outside the server."""

    event_id: str
    routing_key: str
    leased: bool


OutboxReader = Callable[[], Awaitable[list[OutboxRow]]]
KillWhen = Callable[[list[OutboxRow]], bool]


@dataclass
class Burst:
    """What the clients know after the kill."""

    prefix: str
    attempted: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    # Sent, but the connection died before an answer: committed or not, nobody knows.
    unknown: dict[str, str] = field(default_factory=dict)
    # Any answer other than 201: never expected in this burst.
    unexpected: list[str] = field(default_factory=list)
    in_flight_at_kill: int = 0
    seconds_to_kill: float = 0.0
    freezes: int = 0


def any_rows(rows: list[OutboxRow]) -> bool:
    return bool(rows)


def leased_rows(rows: list[OutboxRow]) -> bool:
    """A dead relay's lease: the rows it took but never finished."""
    return any(row.leased for row in rows)


async def burst_then_kill(
    server: ServerProcess,
    *,
    prefix: str,
    outbox: OutboxReader | None = None,
    kill_when: KillWhen = any_rows,
) -> Burst:
    """Create namespaces from `CREATORS` tasks; SIGKILL the server after `KILL_AFTER` 201s.

    With `outbox`, the kill waits (up to `FREEZE_WINDOW`) for a moment when the outbox, read
    while the server is frozen, satisfies `kill_when`.
    """
    burst = Burst(prefix=prefix)
    numbers = itertools.count()
    enough = asyncio.Event()
    killed = False
    in_flight = 0

    async def creator(client: httpx.AsyncClient) -> None:
        nonlocal in_flight
        while not killed:
            number = next(numbers)
            if number >= MAX_CREATIONS:
                return
            name = f"{prefix}-{number:05d}"
            burst.attempted.add(name)
            in_flight += 1
            try:
                response = await client.post(API, json={"name": name, "full_name": name.upper()})
            except httpx.TransportError as exc:
                burst.unknown[name] = repr(exc)
                return
            finally:
                in_flight -= 1
            if response.status_code == 201:
                burst.acknowledged.add(name)
                if len(burst.acknowledged) >= KILL_AFTER:
                    enough.set()
            else:
                burst.unexpected.append(f"{name}: {response.status_code} {response.text}")
                return

    async def freeze_at_the_right_moment() -> None:
        if outbox is None:
            return
        deadline = time.monotonic() + FREEZE_WINDOW
        while True:
            burst.freezes += 1
            await asyncio.to_thread(freeze, server)
            try:
                rows = await outbox()
            except sqlite3.OperationalError:
                rows = []  # caught the writer mid-way through the WAL index: try again
            if kill_when(rows):
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"in {burst.freezes} freezes over {FREEZE_WINDOW} s the outbox never "
                    f"held what this test needs (last: {len(rows)} rows)"
                )
            thaw(server)
            await asyncio.sleep(random.uniform(0.005, 0.05))

    limits = httpx.Limits(max_connections=CREATORS, max_keepalive_connections=CREATORS)
    headers = await asyncio.to_thread(server.admin_headers)
    async with httpx.AsyncClient(
        base_url=server.url, timeout=20.0, limits=limits, headers=headers
    ) as client:
        started = time.monotonic()
        creators = [asyncio.create_task(creator(client)) for _ in range(CREATORS)]
        all_done: asyncio.Future[list[None]] = asyncio.gather(*creators)
        enough_set: asyncio.Future[bool] = asyncio.create_task(enough.wait())
        first: list[asyncio.Future[Any]] = [all_done, enough_set]
        try:
            await asyncio.wait(first, timeout=BURST_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            assert enough.is_set(), (
                f"only {len(burst.acknowledged)} of {len(burst.attempted)} creations acknowledged "
                f"in {BURST_TIMEOUT} s; unexpected answers: {burst.unexpected[:5]}; "
                f"failures: {list(burst.unknown.values())[:5]}\n{log_tail(server)}"
            )
            await freeze_at_the_right_moment()
            burst.seconds_to_kill = time.monotonic() - started
            burst.in_flight_at_kill = in_flight
            killed = True
            # The kill waits for the group to die in a thread, so the answers that were already
            # on their way are still read (and count as acknowledged: the client saw the 201).
            await asyncio.to_thread(server.kill)
            async with asyncio.timeout(BURST_TIMEOUT):
                await all_done
        finally:
            enough_set.cancel()
            for task in creators:
                task.cancel()
            await asyncio.gather(*creators, enough_set, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await all_done
    assert not burst.unexpected, burst.unexpected[:10]
    assert burst.in_flight_at_kill > 0, "the kill did not land while requests were in flight"
    return burst


async def list_names(client: httpx.AsyncClient, prefix: str) -> set[str]:
    """Every namespace whose name contains `prefix`, following cursors."""
    names: set[str] = set()
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, str | int] = {"q": prefix, "limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(API, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        names.update(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return names
    raise AssertionError("the namespace list never ended")


async def assert_acknowledged_survived(server: ServerProcess, burst: Burst) -> set[str]:
    """GET every acknowledged namespace and check the list; the set of names that exist."""
    headers = await asyncio.to_thread(server.admin_headers)
    async with httpx.AsyncClient(base_url=server.url, timeout=20.0, headers=headers) as client:
        missing: list[str] = []
        for name in sorted(burst.acknowledged):
            response = await client.get(f"{API}/{name}")
            if response.status_code != 200:
                missing.append(f"{name}: {response.status_code}")
            else:
                body = response.json()
                assert (body["name"], body["full_name"]) == (name, name.upper()), body
        assert not missing, (
            f"{len(missing)} of {len(burst.acknowledged)} acknowledged namespaces lost after "
            f"SIGKILL: {missing[:10]}"
        )
        listed = await list_names(client, burst.prefix)
    assert burst.acknowledged <= listed, sorted(burst.acknowledged - listed)[:10]
    # Nothing appears that was never sent, and only requests without an answer are in doubt.
    assert listed <= burst.attempted, sorted(listed - burst.attempted)[:10]
    assert listed - burst.acknowledged <= set(burst.unknown), sorted(
        listed - burst.acknowledged - set(burst.unknown)
    )
    return listed


@contextlib.asynccontextmanager
async def running(env: Mapping[str, str], cwd: Path) -> AsyncIterator[ServerProcess]:
    """`obp serve` started in a thread (startup blocks), stopped at the end."""
    server = ServerProcess(env=env, cwd=cwd)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def sqlite_path(data_dir: Path) -> Path:
    return data_dir / "obp.db"


def sqlite_outbox_rows(db: Path, *, read_only: bool = True) -> list[OutboxRow]:
    """The outbox of a SQLite file.

    Read-only beside a server (which may be frozen: a read-only connection never checkpoints
    or recovers the WAL, so it changes nothing the crash leaves behind).
    """
    target = f"file:{db}?mode=ro" if read_only else f"file:{db}"
    with contextlib.closing(sqlite3.connect(target, uri=True, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT event_id, routing_key, due_at IS NOT NULL FROM outbox ORDER BY id"
        ).fetchall()
    return [OutboxRow(str(e), str(k), bool(leased)) for e, k, leased in rows]


def snapshot_sqlite_outbox(data_dir: Path, into: Path) -> list[OutboxRow]:
    """The outbox the kill left, read from a copy so the original stays exactly as it crashed.

    Opening the original read-write would let SQLite recover and checkpoint its WAL; the
    restarted server must do that itself.
    """
    into.mkdir()
    db = sqlite_path(data_dir)
    for suffix in ("", "-wal", "-shm"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copy2(source, into / source.name)
    return sqlite_outbox_rows(into / db.name, read_only=False)


def sqlite_outbox_reader(data_dir: Path) -> OutboxReader:
    async def read() -> list[OutboxRow]:
        return await asyncio.to_thread(sqlite_outbox_rows, sqlite_path(data_dir))

    return read


def postgres_outbox_reader(url: str) -> OutboxReader:
    async def read() -> list[OutboxRow]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            rows = await conn.fetch(
                "SELECT event_id, routing_key, due_at IS NOT NULL AS leased FROM outbox ORDER BY id"
            )
        finally:
            await conn.close()
        return [OutboxRow(row["event_id"], row["routing_key"], row["leased"]) for row in rows]

    return read


async def wait_for_drain(outbox: OutboxReader, server: ServerProcess, at_kill: int) -> float:
    """Wait until the restarted server's relay emptied the outbox; the seconds it took."""

    async def drained() -> bool:
        return not await outbox()

    try:
        return await wait_until(drained, within=DRAIN_TIMEOUT, interval=0.2)
    except TimeoutError:
        left = len(await outbox())
        pytest.fail(
            f"{left} outbox rows still unpublished {DRAIN_TIMEOUT} s after the restart "
            f"({at_kill} at the kill)\n{log_tail(server)}"
        )


def report(burst: Burst, at_kill: list[OutboxRow], drained_in: float) -> str:
    leased = sum(row.leased for row in at_kill)
    return (
        f"{len(burst.acknowledged)} acknowledged, {len(burst.unknown)} in doubt, "
        f"killed after {burst.seconds_to_kill:.1f} s ({burst.freezes} freezes); "
        f"{len(at_kill)} outbox rows at the kill ({leased} leased), drained in {drained_in:.1f} s"
    )


async def test_every_acknowledged_namespace_survives_sigkill(tmp_path: Path) -> None:
    env = server_env(data_dir=tmp_path / "data")
    server = ServerProcess(env=env, cwd=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        burst = await burst_then_kill(server, prefix="crash")
    finally:
        await asyncio.to_thread(server.kill)

    async with running(env, tmp_path) as restarted:
        await assert_acknowledged_survived(restarted, burst)


async def test_leased_outbox_rows_are_published_after_restart_on_the_memory_bus(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = server_env(data_dir=data_dir)
    outbox = sqlite_outbox_reader(data_dir)
    server = ServerProcess(env=env, cwd=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        burst = await burst_then_kill(server, prefix="drain", outbox=outbox, kill_when=leased_rows)
    finally:
        await asyncio.to_thread(server.kill)
    at_kill = snapshot_sqlite_outbox(data_dir, tmp_path / "at-kill")
    assert leased_rows(at_kill), "the kill left no leased outbox rows behind"

    async with running(env, tmp_path) as restarted:
        await assert_acknowledged_survived(restarted, burst)
        seconds = await wait_for_drain(outbox, restarted, len(at_kill))
    print(report(burst, at_kill, seconds))


async def test_outbox_events_are_delivered_after_restart_over_amqp(tmp_path: Path) -> None:
    amqp = server_url("amqp")
    exchange_name = unique_exchange()
    data_dir = tmp_path / "data"
    env = server_env(data_dir=data_dir, bus_url=bus_url(amqp, exchange=exchange_name))
    outbox = sqlite_outbox_reader(data_dir)
    received: Counter[str] = Counter()
    event_ids: set[str] = set()

    async with amqp_channel(amqp) as channel:
        exchange = await channel.declare_exchange(exchange_name, ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{exchange_name}.created", durable=True)
        try:
            await queue.bind(exchange, routing_key="*.namespace.created")

            server = ServerProcess(env=env, cwd=tmp_path)
            await asyncio.to_thread(server.start)
            try:
                burst = await burst_then_kill(
                    server, prefix="amqp", outbox=outbox, kill_when=leased_rows
                )
            finally:
                await asyncio.to_thread(server.kill)
            at_kill = snapshot_sqlite_outbox(data_dir, tmp_path / "at-kill")
            assert leased_rows(at_kill), "the kill left no leased outbox rows behind"

            async with running(env, tmp_path) as restarted:
                existing = await assert_acknowledged_survived(restarted, burst)
                seconds = await wait_for_drain(outbox, restarted, len(at_kill))
                # The relay deletes a row only after the broker confirmed it: all are queued.
                while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
                    event = Event.from_json(message.body)
                    assert event.routing_key == f"{event.namespace}.namespace.created"
                    received[event.payload["name"]] += 1
                    event_ids.add(event.id)
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await delete_exchange(amqp, exchange_name)

    # At-least-once: duplicates are allowed, but only of namespaces that exist; a creation that
    # rolled back (killed before commit) has no event, one that committed has its event.
    assert existing - set(received) == set(), "created events lost"
    assert set(received) - existing == set(), "events of creations that never committed"
    created_at_kill = {row.event_id for row in at_kill if row.routing_key.endswith(".created")}
    assert created_at_kill <= event_ids, "events left in the outbox at the kill were lost"
    duplicates = sum(received.values()) - len(received)
    print(f"{report(burst, at_kill, seconds)}; {duplicates} duplicate deliveries")


async def test_every_acknowledged_namespace_survives_sigkill_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    env = server_env(data_dir=tmp_path / "data", database_url=postgres_url)
    outbox = postgres_outbox_reader(postgres_url)
    server = ServerProcess(env=env, cwd=tmp_path)
    await asyncio.to_thread(server.start)
    try:
        burst = await burst_then_kill(server, prefix="pgcrash", outbox=outbox)
    finally:
        await asyncio.to_thread(server.kill)
    at_kill = await outbox()
    assert at_kill, "the kill left no outbox rows behind"

    async with running(env, tmp_path) as restarted:
        await assert_acknowledged_survived(restarted, burst)
        seconds = await wait_for_drain(outbox, restarted, len(at_kill))
    print(report(burst, at_kill, seconds))

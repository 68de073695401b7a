"""The database port: units of work, the transactional outbox and its relay, on every engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from obp.adapters import migrate
from obp.adapters.bus_amqp import AmqpBus
from obp.adapters.bus_memory import MemoryBus
from obp.adapters.db import Database, create_database
from obp.adapters.outbox import OutboxRelay
from obp.bootstrap import all_tables_metadata
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, Unavailable
from obp.kernel.events import Event
from obp.kernel.tables import outbox
from obp.services.namespaces.model import Namespace
from obp.services.namespaces.repository import NamespaceRepository
from obp.services.namespaces.tables import namespaces
from tests.conftest import migrated_database


def _namespace(name: str) -> Namespace:
    now = utcnow()
    return Namespace(name=name, full_name="", description="", created_at=now, updated_at=now)


async def _count(database: Database, table: sa.Table) -> int:
    async with database.unit_of_work(write=False) as uow:
        return int(await uow.connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def _collect(bus: MemoryBus) -> list[Event]:
    received: list[Event] = []

    async def handler(event: Event) -> None:
        received.append(event)

    await bus.subscribe(patterns=["#"], handler=handler)
    return received


async def test_commit_writes_rows_and_their_events_together(database: Database) -> None:
    async with database.unit_of_work() as uow:
        await NamespaceRepository(uow.connection).add(_namespace("acme"))
        uow.emit(Event(namespace="acme", service="namespace", name="created"))
        await uow.commit()
    assert await _count(database, namespaces) == 1
    assert await _count(database, outbox) == 1


async def test_leaving_without_commit_rolls_back_rows_and_events(database: Database) -> None:
    async with database.unit_of_work() as uow:
        await NamespaceRepository(uow.connection).add(_namespace("acme"))
        uow.emit(Event(namespace="acme", service="namespace", name="created"))
    assert await _count(database, namespaces) == 0
    assert await _count(database, outbox) == 0


async def test_an_error_inside_the_unit_of_work_writes_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with database.unit_of_work() as uow:
            await NamespaceRepository(uow.connection).add(_namespace("acme"))
            uow.emit(Event(namespace="acme", service="namespace", name="created"))
            raise RuntimeError("boom")
    assert await _count(database, namespaces) == 0
    assert await _count(database, outbox) == 0


async def test_duplicate_primary_key_is_a_conflict_and_keeps_the_first(database: Database) -> None:
    async with database.unit_of_work() as uow:
        await NamespaceRepository(uow.connection).add(_namespace("acme"))
        await uow.commit()
    with pytest.raises(Conflict, match="already exists"):
        async with database.unit_of_work() as uow:
            await NamespaceRepository(uow.connection).add(_namespace("acme"))
            await uow.commit()
    assert await _count(database, namespaces) == 1


async def test_concurrent_writers_all_commit(database: Database) -> None:
    async def create(index: int) -> None:
        async with database.unit_of_work() as uow:
            await NamespaceRepository(uow.connection).add(_namespace(f"tenant-{index}"))
            uow.emit(Event(namespace=f"tenant-{index}", service="namespace", name="created"))
            await uow.commit()

    await asyncio.gather(*(create(i) for i in range(40)))
    assert await _count(database, namespaces) == 40
    assert await _count(database, outbox) == 40


async def test_timestamps_come_back_as_the_same_utc_instant(database: Database) -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    namespace = Namespace("acme", "", "", created, created)
    async with database.unit_of_work() as uow:
        await NamespaceRepository(uow.connection).add(namespace)
        await uow.commit()
    async with database.unit_of_work(write=False) as uow:
        stored = await NamespaceRepository(uow.connection).get("acme")
    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at.tzinfo is not None


async def test_migrating_twice_changes_nothing(database: Database) -> None:
    await migrate.upgrade(database)
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    async with database.unit_of_work(write=False) as uow:
        version = await uow.connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    assert version == head


async def test_migrations_build_exactly_the_tables_the_code_declares(database: Database) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, all_tables_metadata()))

    async with database.unit_of_work(write=False) as uow:
        diff = await uow.connection.run_sync(differences)
    assert diff == []


async def test_relay_publishes_committed_events_in_order_and_empties_outbox(
    database: Database,
) -> None:
    bus = MemoryBus()
    received = await _collect(bus)
    async with database.unit_of_work() as uow:
        for index in range(5):
            uow.emit(Event(namespace="acme", service="kv", name="set", payload={"i": index}))
        await uow.commit()
    relay = OutboxRelay(database, bus)
    assert await relay.relay_once() == 5
    assert [event.payload["i"] for event in received] == [0, 1, 2, 3, 4]
    assert await relay.pending() == 0


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(database: Database) -> None:
    bus = MemoryBus()
    received = await _collect(bus)
    relay = OutboxRelay(database, bus, poll_seconds=60)
    database.add_commit_listener(relay.notify)
    await relay.start()
    try:
        async with database.unit_of_work() as uow:
            uow.emit(Event(namespace="acme", service="namespace", name="created"))
            await uow.commit()
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    assert received[0].routing_key == "acme.namespace.created"


async def test_a_failing_consumer_backs_off_its_event_without_holding_back_others(
    database: Database,
) -> None:
    bus = MemoryBus()
    attempts: list[int] = []

    async def flaky(event: Event) -> None:
        attempts.append(event.payload["i"])
        if event.payload["i"] == 1 and attempts.count(1) == 1:
            raise RuntimeError("consumer down")

    await bus.subscribe(patterns=["#"], handler=flaky, queue="flaky")
    async with database.unit_of_work() as uow:
        for index in range(3):
            uow.emit(Event(namespace="acme", service="kv", name="set", payload={"i": index}))
        await uow.commit()
    relay = OutboxRelay(database, bus)
    assert await relay.relay_once() == 2
    assert await relay.pending() == 1
    async with database.unit_of_work(write=False) as uow:
        retry = (await uow.connection.execute(sa.select(outbox.c.attempts, outbox.c.due_at))).one()
    assert retry.attempts == 1
    assert retry.due_at > utcnow()
    assert await relay.relay_once() == 0  # backing off
    async with database.unit_of_work() as uow:
        await uow.connection.execute(outbox.update().values(due_at=utcnow()))
        await uow.commit()
    assert await relay.relay_once() == 1
    assert await relay.pending() == 0
    assert attempts == [0, 1, 2, 1]


async def test_an_unreachable_bus_stops_the_batch_and_keeps_every_event(
    database: Database,
) -> None:
    async with database.unit_of_work() as uow:
        for index in range(3):
            uow.emit(Event(namespace="acme", service="kv", name="set", payload={"i": index}))
        await uow.commit()
    down = AmqpBus("amqp://guest:guest@127.0.0.1:1/")  # never started: every publish fails
    with pytest.raises(Unavailable):
        await OutboxRelay(database, down).relay_once()
    bus = MemoryBus()
    received = await _collect(bus)
    assert await OutboxRelay(database, bus).relay_once() == 3
    assert [event.payload["i"] for event in received] == [0, 1, 2]


async def test_leased_events_are_not_published_twice_by_concurrent_relays(
    database: Database,
) -> None:
    bus = MemoryBus()
    received = await _collect(bus)
    async with database.unit_of_work() as uow:
        for index in range(300):
            uow.emit(Event(namespace="acme", service="kv", name="set", payload={"i": index}))
        await uow.commit()
    relays = [OutboxRelay(database, bus, batch_size=25) for _ in range(3)]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    await asyncio.gather(*(drain(relay) for relay in relays))
    assert sorted(event.payload["i"] for event in received) == list(range(300))


@pytest_asyncio.fixture
async def sqlite_database(sqlite_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite database (for what only the lease strategy has)."""
    async with migrated_database(sqlite_url) as db:
        yield db


@pytest_asyncio.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database (for what only the row-lock strategy has)."""
    async with migrated_database(postgres_url) as db:
        yield db


async def _lease_all(database: Database, until: datetime) -> None:
    async with database.unit_of_work() as uow:
        await uow.connection.execute(outbox.update().values(due_at=until))
        await uow.commit()


async def test_sqlite_an_expired_lease_makes_events_due_again(sqlite_database: Database) -> None:
    async with sqlite_database.unit_of_work() as uow:
        uow.emit(Event(namespace="acme", service="namespace", name="created"))
        await uow.commit()
    # A relay that leased the row and died: its lease is in the past now.
    await _lease_all(sqlite_database, utcnow() - timedelta(seconds=1))
    bus = MemoryBus()
    received = await _collect(bus)
    assert await OutboxRelay(sqlite_database, bus).relay_once() == 1
    assert len(received) == 1


async def test_sqlite_a_live_lease_holds_events_back_until_a_relay_restarts(
    sqlite_database: Database,
) -> None:
    async with sqlite_database.unit_of_work() as uow:
        uow.emit(Event(namespace="acme", service="namespace", name="created"))
        await uow.commit()
    await _lease_all(sqlite_database, utcnow() + timedelta(minutes=5))
    bus = MemoryBus()
    received = await _collect(bus)
    assert await OutboxRelay(sqlite_database, bus).relay_once() == 0
    assert received == []
    # One process owns a SQLite file: a relay starting on it knows the old leases are dead.
    relay = OutboxRelay(sqlite_database, bus, poll_seconds=0.05)
    await relay.start()
    try:
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    assert await relay.pending() == 0


async def test_postgres_rows_locked_by_a_live_relay_are_skipped_and_freed_when_it_dies(
    postgres_database: Database,
) -> None:
    async with postgres_database.unit_of_work() as uow:
        for index in range(3):
            uow.emit(Event(namespace="acme", service="kv", name="set", payload={"i": index}))
        await uow.commit()
    bus = MemoryBus()
    received = await _collect(bus)
    relay = OutboxRelay(postgres_database, bus)
    # Another replica's relay holds the first row locked while it publishes.
    async with postgres_database.engine.connect() as other:
        await other.execute(sa.select(outbox.c.id).order_by(outbox.c.id).limit(1).with_for_update())
        assert await relay.relay_once() == 2
        assert [event.payload["i"] for event in received] == [1, 2]
        await other.invalidate()  # that replica dies mid-publish: its connection drops
    assert await relay.relay_once() == 1
    assert [event.payload["i"] for event in received] == [1, 2, 0]


async def test_sqlite_keeps_every_acknowledged_write_on_disk(sqlite_url: str) -> None:
    database = create_database(sqlite_url)
    try:
        async with database.unit_of_work(write=False) as uow:
            journal = await uow.connection.scalar(sa.text("PRAGMA journal_mode"))
            synchronous = await uow.connection.scalar(sa.text("PRAGMA synchronous"))
    finally:
        await database.close()
    assert journal == "wal"
    assert synchronous == 2  # FULL: fsync at every commit


async def test_stopping_the_relay_right_after_a_commit_never_hangs(database: Database) -> None:
    bus = MemoryBus()
    await _collect(bus)
    relay = OutboxRelay(database, bus, poll_seconds=0.05)
    database.add_commit_listener(relay.notify)
    for _ in range(20):
        await relay.start()
        async with database.unit_of_work() as uow:
            uow.emit(Event(namespace="acme", service="namespace", name="created"))
            await uow.commit()
        async with asyncio.timeout(5):
            await relay.stop()

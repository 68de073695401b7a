"""Namespace changes reach the bus through the outbox, on every database engine."""

from __future__ import annotations

import asyncio

import pytest

from obp.adapters.bus_memory import MemoryBus
from obp.adapters.db import Database
from obp.adapters.outbox import OutboxRelay
from obp.kernel.errors import Conflict
from obp.kernel.events import Event
from obp.services.namespaces import NamespaceService
from tests.principals import OPERATOR, AllowAll


@pytest.fixture
def service(database: Database) -> NamespaceService:
    """The namespace service on a migrated database."""
    return NamespaceService(unit_of_work=database.unit_of_work, access=AllowAll())


async def _published(database: Database) -> list[Event]:
    bus = MemoryBus()
    received: list[Event] = []

    async def collect(event: Event) -> None:
        received.append(event)

    await bus.subscribe(patterns=["*.namespace.*"], handler=collect)
    while await OutboxRelay(database, bus).relay_once():
        pass
    return received


async def test_create_update_delete_emit_events_in_order(
    service: NamespaceService, database: Database
) -> None:
    await service.create(principal=OPERATOR, name="acme", full_name="ACME")
    await service.update(principal=OPERATOR, name="acme", description="x")
    await service.delete(principal=OPERATOR, name="acme")
    events = await _published(database)
    assert [e.routing_key for e in events] == [
        "acme.namespace.created",
        "acme.namespace.updated",
        "acme.namespace.deleted",
    ]
    assert events[0].payload["full_name"] == "ACME"
    assert events[2].payload["by"] == OPERATOR.identity


async def test_deleting_twice_emits_one_deleted_event(
    service: NamespaceService, database: Database
) -> None:
    await service.create(principal=OPERATOR, name="acme")
    await service.delete(principal=OPERATOR, name="acme")
    await service.delete(principal=OPERATOR, name="acme")
    deleted = [e for e in await _published(database) if e.name == "deleted"]
    assert len(deleted) == 1


async def test_a_refused_create_emits_nothing(
    service: NamespaceService, database: Database
) -> None:
    await service.create(principal=OPERATOR, name="acme")
    with pytest.raises(Conflict):
        await service.create(principal=OPERATOR, name="acme")
    assert [e.name for e in await _published(database)] == ["created"]


async def test_concurrent_updates_of_different_fields_both_apply(
    service: NamespaceService,
) -> None:
    await service.create(principal=OPERATOR, name="acme")
    for round_ in range(10):
        await asyncio.gather(
            service.update(principal=OPERATOR, name="acme", full_name=f"name {round_}"),
            service.update(principal=OPERATOR, name="acme", description=f"text {round_}"),
        )
        final = await service.get(principal=OPERATOR, name="acme")
        assert (final.full_name, final.description) == (f"name {round_}", f"text {round_}")


async def test_an_update_that_changes_nothing_writes_nothing(
    service: NamespaceService, database: Database
) -> None:
    created = await service.create(principal=OPERATOR, name="acme", full_name="A")
    same = await service.update(principal=OPERATOR, name="acme", full_name="A")
    assert same.updated_at == created.updated_at
    assert [e.name for e in await _published(database)] == ["created"]

"""A key-value service on a migrated database, with a clock the tests move forward."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from obp.adapters.bus_memory import MemoryBus
from obp.adapters.cache_memory import MemoryCache
from obp.adapters.db import Database
from obp.adapters.outbox import OutboxRelay
from obp.kernel.clock import utcnow
from obp.kernel.events import Event
from obp.kernel.ports import Cache
from obp.services.kv import KvService
from obp.services.kv import service as kv_service_module
from obp.services.namespaces import NamespaceService
from tests.principals import OPERATOR, AllowAll

NS = "acme"
CACHE_TTL = 300.0
MAX_VALUE = 256 * 1024


@dataclass
class Clock:
    """Real time plus an offset that only grows: ahead of every other clock in the process."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the service's "now" forward (and the caches' own clock with it)."""
        self.offset += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        """The caches' clock, moved as far forward."""
        return time.monotonic() + self.offset.total_seconds()


@dataclass
class World:
    """The service under test, what it runs on, and what it was asked."""

    database: Database
    namespaces: NamespaceService
    access: AllowAll
    cache: MemoryCache
    clock: Clock
    kv: KvService

    def replica(self, cache: Cache | None = None) -> KvService:
        """Another process's service on the same database: its own cache unless one is given."""
        return KvService(
            unit_of_work=self.database.unit_of_work,
            namespaces=self.namespaces,
            access=self.access,
            cache=MemoryCache(clock=self.clock.monotonic) if cache is None else cache,
            cache_ttl=CACHE_TTL,
            max_value_bytes=MAX_VALUE,
        )

    async def events(self) -> list[Event]:
        """Publish what the outbox holds (it empties); the events, in order."""
        bus = MemoryBus()
        received: list[Event] = []

        async def collect(event: Event) -> None:
            received.append(event)

        await bus.subscribe(patterns=["#"], handler=collect)
        while await OutboxRelay(self.database, bus).relay_once():
            pass
        return received


@pytest_asyncio.fixture(name="world")
async def world_fixture(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """Namespace `acme` and a key-value service whose clock the test controls.

    Test modules import it as `world_fixture`; tests ask for `world`.
    """
    access = AllowAll()
    namespaces = NamespaceService(unit_of_work=database.unit_of_work, access=access)
    await namespaces.create(principal=OPERATOR, name=NS)
    clock = Clock()
    monkeypatch.setattr(kv_service_module, "utcnow", clock)
    cache = MemoryCache(clock=clock.monotonic)
    built = World(
        database=database,
        namespaces=namespaces,
        access=access,
        cache=cache,
        clock=clock,
        kv=KvService(
            unit_of_work=database.unit_of_work,
            namespaces=namespaces,
            access=access,
            cache=cache,
            cache_ttl=CACHE_TTL,
            max_value_bytes=MAX_VALUE,
        ),
    )
    await built.events()  # the namespace's own
    yield built

"""Key-value data over time, on every engine: namespace purge and re-creation, the expiry
sweep, and caches of several replicas kept coherent."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from obp.adapters.cache_memory import MemoryCache
from obp.kernel.errors import NotFound, Unavailable
from obp.kernel.events import Event
from obp.services.kv import KvService, Preconditions
from obp.services.kv import service as kv_service_module
from obp.services.kv.cache import MAX_CACHED_VALUE, Kind, KvCache, microseconds
from obp.services.kv.repository import KvRepository
from obp.services.kv.tables import kv_entries
from tests.integration.kv_world import (
    CACHE_TTL,
    NS,
    World,
    world_fixture,  # noqa: F401  (the `world` fixture)
)
from tests.principals import OPERATOR


async def _put(kv: KvService, key: str, value: bytes, **options: object) -> int:
    entry, _ = await kv.put(
        principal=OPERATOR,
        namespace=NS,
        key=key,
        value=value,
        **options,  # type: ignore[arg-type]
    )
    return entry.version


async def _value(kv: KvService, key: str) -> bytes | None:
    try:
        entry, _ = await kv.get(principal=OPERATOR, namespace=NS, key=key)
    except NotFound:
        return None
    return entry.value


async def _rows(world: World) -> dict[str, int]:
    """Every row of `acme`, tombstones and other incarnations included: key -> version."""
    async with world.database.unit_of_work(write=False) as uow:
        rows = await uow.connection.execute(
            sa.select(kv_entries.c.key, kv_entries.c.version).where(kv_entries.c.namespace == NS)
        )
        return {key: version for key, version in rows}


async def _deleted_event(world: World) -> Event:
    await world.namespaces.delete(principal=OPERATOR, name=NS)
    (deleted,) = [e for e in await world.events() if e.routing_key == f"{NS}.namespace.deleted"]
    return deleted


async def test_deleting_the_namespace_purges_its_keys_and_leaves_others_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kv_service_module, "_PURGE_BATCH", 10)
    await world.namespaces.create(principal=OPERATOR, name="other")
    for index in range(25):  # more than one purge batch
        await _put(world.kv, f"k{index:04d}", b"v")
    await world.kv.put(principal=OPERATOR, namespace="other", key="k0000", value=b"kept")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="k0001")
    deleted = await _deleted_event(world)

    await world.kv.purge_namespace(deleted)
    await world.kv.purge_namespace(deleted)  # at-least-once delivery: idempotent

    assert await _rows(world) == {}
    kept, _ = await world.kv.get(principal=OPERATOR, namespace="other", key="k0000")
    assert kept.value == b"kept"


async def test_a_recreated_namespace_never_sees_the_old_keys_even_before_the_purge(
    world: World,
) -> None:
    await _put(world.kv, "old", b"old value")
    await _put(world.kv, "shared", b"old shared")
    assert await _value(world.kv, "old") == b"old value"  # cached under the old incarnation
    deleted = await _deleted_event(world)
    await world.namespaces.create(principal=OPERATOR, name=NS)

    assert await _value(world.kv, "old") is None
    assert await _value(world.kv, "shared") is None
    assert (await world.kv.list(principal=OPERATOR, namespace=NS)).items == []
    # Absent for conditions too; the write takes the old row over for the new incarnation.
    await _put(world.kv, "shared", b"new shared", conditions=Preconditions(if_none_match=("*",)))
    await _put(world.kv, "fresh", b"new")
    usage = await world.kv.usage(
        namespace=NS, since=(await world.namespaces.lookup(name=NS)).created_at
    )
    assert (usage.count, usage.bytes) == (2, len(b"new shared") + 3)

    await world.kv.purge_namespace(deleted)

    assert set(await _rows(world)) == {"shared", "fresh"}
    assert await _value(world.kv, "shared") == b"new shared"
    assert await _value(world.kv, "fresh") == b"new"
    assert await _value(world.kv, "old") is None


async def test_the_sweep_deletes_long_expired_values_and_old_tombstones_only(
    world: World,
) -> None:
    await _put(world.kv, "expired", b"v", ttl=1)
    await _put(world.kv, "deleted", b"v")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="deleted")
    await _put(world.kv, "kept", b"v")
    await _put(world.kv, "long-ttl", b"v", ttl=3600)
    assert await world.kv.sweep_expired() == 0

    world.clock.advance(2 * CACHE_TTL - 10)
    await _put(world.kv, "recently-deleted", b"v")
    await world.kv.delete(principal=OPERATOR, namespace=NS, key="recently-deleted")
    assert await world.kv.sweep_expired(now=world.clock()) == 0
    world.clock.advance(20)

    assert await world.kv.sweep_expired(now=world.clock()) == 2

    assert set(await _rows(world)) == {"kept", "long-ttl", "recently-deleted"}
    # The swept keys start their versions again, and nothing cached says otherwise.
    assert await _put(world.kv, "deleted", b"reborn") == 1
    assert await _value(world.kv, "deleted") == b"reborn"
    assert await _value(world.kv, "expired") is None


async def test_replicas_with_their_own_caches_converge_through_the_change_event(
    world: World,
) -> None:
    a, b = world.kv, world.replica()
    await _put(a, "k", b"one")
    assert await _value(b, "k") == b"one"  # cached on B
    await _put(a, "k", b"two")
    assert await _value(b, "k") == b"one"  # B's memory cache has not heard yet
    for event in await world.events():
        await b.forget(event)
    assert await _value(b, "k") == b"two"

    await a.delete(principal=OPERATOR, namespace=NS, key="k")
    for event in await world.events():
        await b.forget(event)
        await b.forget(event)  # delivered twice: harmless
    assert await _value(b, "k") is None
    await _put(b, "k", b"three")
    for event in await world.events():
        await a.forget(event)
    assert await _value(a, "k") == b"three"


async def test_replicas_sharing_one_cache_see_a_write_at_once(world: World) -> None:
    shared = MemoryCache(clock=world.clock.monotonic)
    a, b = world.replica(shared), world.replica(shared)
    for round_ in range(10):
        writer, reader = (a, b) if round_ % 2 == 0 else (b, a)
        await _value(reader, "k")
        if round_ % 3 == 2:
            await writer.delete(principal=OPERATOR, namespace=NS, key="k")
            assert await _value(reader, "k") is None
        else:
            await _put(writer, "k", f"round {round_}".encode())
            assert await _value(reader, "k") == f"round {round_}".encode()


async def test_a_reader_that_read_before_a_write_cannot_cache_the_old_value_after_it(
    world: World,
) -> None:
    await _put(world.kv, "k", b"old")
    since = (await world.namespaces.lookup(name=NS)).created_at
    cache_key = KvCache.key(NS, microseconds(since), "k")
    async with world.database.unit_of_work(write=False) as uow:
        stale = await KvRepository(uow.connection).get(NS, "k", with_value=True)
    await world.cache.delete(cache_key)
    await _put(world.kv, "k", b"new")
    cache = KvCache(world.cache, ttl=CACHE_TTL)
    await cache.fill(cache_key, stale, since=since, now=world.clock())  # the slow reader
    assert await _value(world.kv, "k") == b"new"


async def test_large_values_always_come_from_the_database_with_their_metadata_cached(
    world: World,
) -> None:
    big = bytes(range(256)) * (MAX_CACHED_VALUE // 256 + 1)
    await _put(world.kv, "big", big, content_type="application/x-big")
    since = (await world.namespaces.lookup(name=NS)).created_at
    cached = await KvCache(world.cache, ttl=CACHE_TTL).read(
        KvCache.key(NS, microseconds(since), "big")
    )
    assert cached is not None
    assert (cached.kind, cached.value, cached.size) == (Kind.RELOAD, None, len(big))
    assert await _value(world.kv, "big") == big
    head, _ = await world.kv.get(principal=OPERATOR, namespace=NS, key="big", with_value=False)
    assert (head.size, head.content_type) == (len(big), "application/x-big")


class _Unreachable(MemoryCache):
    async def get_versioned(self, key: str) -> tuple[int, bytes] | None:
        raise Unavailable("redis: connection refused")

    async def put_versioned(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> bool:
        raise Unavailable("redis: connection refused")


async def test_without_its_cache_a_replica_reads_the_database_and_refuses_writes(
    world: World,
) -> None:
    await _put(world.kv, "k", b"stored")
    down = world.replica(_Unreachable())
    assert await _value(down, "k") == b"stored"
    with pytest.raises(Unavailable):
        await down.put(principal=OPERATOR, namespace=NS, key="k", value=b"lost")
    with pytest.raises(Unavailable):
        await down.delete(principal=OPERATOR, namespace=NS, key="k")
    assert await _value(world.kv, "k") == b"stored"
    assert await _rows(world) == {"k": 1}

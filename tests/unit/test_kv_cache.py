"""Cached key-value entries: versions decide which of racing fills and invalidations stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from obp.adapters.cache_memory import MemoryCache
from obp.kernel.errors import Unavailable
from obp.services.kv.cache import MAX_CACHED_VALUE, Kind, KvCache, microseconds
from obp.services.kv.model import KvRow, etag_of

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)
KEY = KvCache.key("acme", microseconds(SINCE), "orders/42")


def _row(version: int, data: bytes = b"v", **changes: object) -> KvRow:
    fields: dict[str, object] = {
        "namespace": "acme",
        "key": "orders/42",
        "content_type": "text/plain",
        "etag": etag_of("text/plain", data),
        "size": len(data),
        "version": version,
        "expires_at": None,
        "created_at": SINCE,
        "updated_at": NOW,
        "value": data,
    }
    fields.update(changes)
    return KvRow(**fields)  # type: ignore[arg-type]


@pytest.fixture
def cache() -> KvCache:
    return KvCache(MemoryCache(), ttl=300)


async def test_a_value_round_trips_with_its_metadata(cache: KvCache) -> None:
    expires = NOW + timedelta(seconds=90)
    await cache.fill(KEY, _row(3, b"\x00bytes\n", expires_at=expires), since=SINCE, now=NOW)
    cached = await cache.read(KEY)
    assert cached is not None
    assert (cached.kind, cached.version, cached.value) == (Kind.VALUE, 3, b"\x00bytes\n")
    assert (cached.content_type, cached.size, cached.expires_at) == ("text/plain", 7, expires)
    assert cached.etag == etag_of("text/plain", b"\x00bytes\n")
    assert cached.has_metadata


async def test_the_key_carries_the_namespace_incarnation() -> None:
    again = SINCE + timedelta(microseconds=1)
    assert KvCache.key("acme", microseconds(SINCE), "k") != KvCache.key(
        "acme", microseconds(again), "k"
    )
    assert KvCache.key("acme", 5, "a/b") == "kv:acme:5:a/b"


async def test_a_stale_fill_loses_against_a_newer_entry(cache: KvCache) -> None:
    await cache.fill(KEY, _row(5, b"new"), since=SINCE, now=NOW)
    await cache.fill(KEY, _row(4, b"old"), since=SINCE, now=NOW)
    await cache.fill(KEY, None, since=SINCE, now=NOW)  # "no row" is the oldest of all
    cached = await cache.read(KEY)
    assert cached is not None
    assert (cached.version, cached.value) == (5, b"new")


async def test_an_invalidation_evicts_older_entries_and_loses_against_its_own_version(
    cache: KvCache,
) -> None:
    await cache.fill(KEY, _row(4, b"old"), since=SINCE, now=NOW)
    await cache.invalidate(KEY, 5)
    reload = await cache.read(KEY)
    assert reload is not None
    assert reload.kind == Kind.RELOAD
    assert not reload.has_metadata
    # A reader that read version 4 before the write cannot put it back...
    await cache.fill(KEY, _row(4, b"old"), since=SINCE, now=NOW)
    assert (await cache.read(KEY)) == reload
    # ...while one that read version 5 replaces the invalidation.
    await cache.fill(KEY, _row(5, b"new"), since=SINCE, now=NOW)
    cached = await cache.read(KEY)
    assert cached is not None
    assert cached.value == b"new"
    # A late invalidation of an older change changes nothing.
    await cache.invalidate(KEY, 5)
    assert (await cache.read(KEY)) == cached


async def test_large_values_are_cached_as_metadata_only(cache: KvCache) -> None:
    big = b"x" * (MAX_CACHED_VALUE + 1)
    await cache.fill(KEY, _row(2, big), since=SINCE, now=NOW)
    cached = await cache.read(KEY)
    assert cached is not None
    assert (cached.kind, cached.value, cached.size) == (Kind.RELOAD, None, len(big))
    assert cached.has_metadata
    assert cached.etag == etag_of("text/plain", big)


async def test_a_row_read_without_its_bytes_is_not_cached(cache: KvCache) -> None:
    await cache.fill(KEY, _row(2, b"small", value=None), since=SINCE, now=NOW)
    assert await cache.read(KEY) is None


async def test_absence_is_cached_at_the_version_of_the_tombstone(cache: KvCache) -> None:
    tombstone = _row(6, b"", tombstone=True, value=None, etag="", content_type="")
    await cache.fill(KEY, tombstone, since=SINCE, now=NOW)
    cached = await cache.read(KEY)
    assert cached is not None
    assert (cached.kind, cached.version, cached.has_metadata) == (Kind.ABSENT, 6, False)
    await cache.fill(KEY, _row(5, b"older"), since=SINCE, now=NOW)
    assert (await cache.read(KEY)) == cached


async def test_a_row_of_an_earlier_incarnation_is_cached_as_no_row(cache: KvCache) -> None:
    await cache.fill(KEY, _row(9, created_at=SINCE - timedelta(seconds=1)), since=SINCE, now=NOW)
    cached = await cache.read(KEY)
    assert cached is not None
    assert (cached.kind, cached.version) == (Kind.ABSENT, 0)


async def test_an_expiring_value_keeps_guarding_its_version_after_it_expires() -> None:
    ticks = [0.0]
    memory = MemoryCache(clock=lambda: ticks[0])
    cache = KvCache(memory, ttl=300)
    await cache.fill(KEY, _row(2, expires_at=NOW + timedelta(seconds=10)), since=SINCE, now=NOW)
    ticks[0] = 10.1
    cached = await cache.read(KEY)
    # Still there, and read as expired: a reader that loaded the older version 1 before the
    # write cannot put it back, as it could into an emptied key.
    assert cached is not None
    assert cached.expired(NOW + timedelta(seconds=10.1))
    await cache.fill(KEY, _row(1), since=SINCE, now=NOW)
    again = await cache.read(KEY)
    assert again is not None
    assert again.version == 2


async def test_absence_of_an_old_tombstone_is_cached_at_most_one_ttl_after_the_delete() -> None:
    ticks = [0.0]
    cache = KvCache(MemoryCache(clock=lambda: ticks[0]), ttl=300)
    deleted_at = NOW - timedelta(seconds=200)
    tombstone = _row(3, tombstone=True, value=None, updated_at=deleted_at)
    await cache.fill(KEY, tombstone, since=SINCE, now=NOW)
    ticks[0] = 99.0
    assert await cache.read(KEY) is not None
    ticks[0] = 101.0  # 300 s after the delete: the sweeper may soon restart the versions
    assert await cache.read(KEY) is None
    await cache.fill(KEY, _row(3, tombstone=True, value=None, updated_at=NOW - timedelta(hours=1)),
                     since=SINCE, now=NOW)  # fmt: skip
    assert await cache.read(KEY) is None


class _Down(MemoryCache):
    async def get_versioned(self, key: str) -> tuple[int, bytes] | None:
        raise Unavailable("redis: down")

    async def put_versioned(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> bool:
        raise Unavailable("redis: down")


async def test_reads_and_fills_skip_an_unreachable_cache_but_invalidations_fail() -> None:
    cache = KvCache(_Down(), ttl=300)
    assert await cache.read(KEY) is None
    await cache.fill(KEY, _row(1), since=SINCE, now=NOW)
    with pytest.raises(Unavailable):
        await cache.invalidate(KEY, 2)

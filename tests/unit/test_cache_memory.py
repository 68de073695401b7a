"""MemoryCache behaviour beyond the Cache contract: its bounds, clock and URL options."""

from __future__ import annotations

import pytest

from obp.adapters.cache_memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryCache, create
from obp.kernel.errors import ConfigurationError


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_evicts_least_recently_used_when_full() -> None:
    cache = MemoryCache(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, b"v")
    await cache.get("a")  # "a" is now the most recently used, so "b" is the oldest

    await cache.set("d", b"v")

    assert await cache.get("b") is None
    assert [await cache.get(key) for key in ("a", "c", "d")] == [b"v", b"v", b"v"]
    assert len(cache) == 3


async def test_evicts_by_total_bytes() -> None:
    # Each entry is a 1-byte key plus a 10-byte value: 11 bytes, so 33 bytes hold three.
    cache = MemoryCache(max_bytes=35)
    for key in ("a", "b", "c"):
        await cache.set(key, b"x" * 10)

    await cache.set("d", b"x" * 10)

    assert await cache.get("a") is None
    assert cache.size_bytes == 33
    assert len(cache) == 3


async def test_drops_a_value_larger_than_the_whole_cache() -> None:
    cache = MemoryCache(max_bytes=16)
    await cache.set("small", b"1")

    await cache.set("big", b"x" * 100)

    assert await cache.get("big") is None
    assert await cache.get("small") == b"1"


async def test_overwrite_accounts_bytes_of_the_new_value_only() -> None:
    cache = MemoryCache()
    await cache.set("k", b"x" * 100)
    await cache.set("k", b"x" * 10)

    assert cache.size_bytes == 11


async def test_expiry_follows_the_monotonic_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", ttl=10)

    clock.now += 9.9
    assert await cache.get("k") == b"v"
    clock.now += 0.1
    assert await cache.get("k") is None
    assert cache.size_bytes == 0


async def test_close_drops_every_entry() -> None:
    cache = MemoryCache()
    await cache.set("k", b"v")

    await cache.close()

    assert len(cache) == 0
    assert await cache.get("k") is None


async def test_versioned_entries_are_evicted_like_any_other_and_forget_their_version() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.put_versioned("a", b"v9", version=9)
    await cache.set("b", b"plain")
    await cache.set("c", b"plain")  # evicts "a", the least recently used

    assert await cache.get_versioned("a") is None
    assert await cache.put_versioned("a", b"v1", version=1) is True
    assert len(cache) == 2
    assert cache.size_bytes == len("a") + 2 + len("c") + 5


async def test_a_plain_set_over_a_versioned_key_drops_its_version() -> None:
    cache = MemoryCache()
    await cache.put_versioned("k", b"v5", version=5)
    await cache.set("k", b"plain")

    assert await cache.get_versioned("k") is None
    assert await cache.put_versioned("k", b"v1", version=1) is True


async def test_an_expired_versioned_entry_no_longer_holds_its_version() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.put_versioned("k", b"v7", version=7, ttl=10)
    clock.now += 9.9
    assert await cache.put_versioned("k", b"v3", version=3) is False
    clock.now += 0.2
    assert await cache.put_versioned("k", b"v3", version=3) is True
    assert await cache.get_versioned("k") == (3, b"v3")


def test_create_uses_defaults_without_options() -> None:
    cache = create("memory://")

    assert (cache.max_entries, cache.max_bytes) == (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    assert cache.backend == "memory"


def test_create_reads_bounds_from_url_options() -> None:
    cache = create("memory://?max_entries=10&max_bytes=1_000")

    assert (cache.max_entries, cache.max_bytes) == (10, 1000)


def test_create_keyword_options_override_the_url() -> None:
    cache = create("memory://?max_entries=10", max_entries=20)

    assert cache.max_entries == 20


def test_rejects_unknown_url_option() -> None:
    with pytest.raises(ConfigurationError, match=r"'max_size'.*max_entries, max_bytes"):
        create("memory://?max_size=10")


@pytest.mark.parametrize("value", ["0", "-1", "ten", ""])
def test_rejects_bounds_that_are_not_positive_integers(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"'max_bytes' must be a positive integer"):
        create(f"memory://?max_bytes={value}")


def test_rejects_other_schemes() -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        create("redis://localhost")

"""The Cache contract, run against every cache adapter that is reachable."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from obp.adapters import cache_memory, cache_redis
from obp.kernel.errors import Unavailable
from obp.kernel.ports import Cache
from tests.servers import server_url


class Keys:
    """Makes test keys under a random prefix and remembers them for cleanup."""

    def __init__(self) -> None:
        self.prefix = f"obp-test-{uuid.uuid4().hex}:"
        self.made: list[str] = []

    def __call__(self, name: str) -> str:
        key = self.prefix + name
        self.made.append(key)
        return key


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest, keys: Keys) -> AsyncIterator[Cache]:
    adapter: Cache
    if request.param == "memory":
        adapter = cache_memory.create("memory://")
    else:
        adapter = cache_redis.create(server_url("redis"))
    try:
        yield adapter
        if keys.made:
            await adapter.delete(*keys.made)
    finally:
        await adapter.close()


async def test_ping_succeeds_on_a_reachable_backend(cache: Cache) -> None:
    await cache.ping()
    assert cache.backend in ("memory", "redis")


async def test_returns_none_for_absent_key(cache: Cache, keys: Keys) -> None:
    assert await cache.get(keys("absent")) is None


async def test_set_then_get_returns_bytes(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"hello")

    value = await cache.get(keys("a"))

    assert value == b"hello"
    assert isinstance(value, bytes)


async def test_stores_empty_and_arbitrary_binary_values(cache: Cache, keys: Keys) -> None:
    binary = bytes(range(256))
    await cache.set(keys("empty"), b"")
    await cache.set(keys("binary"), binary)

    assert await cache.get(keys("empty")) == b""
    assert await cache.get(keys("binary")) == binary


async def test_overwrites_existing_value(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"first")
    await cache.set(keys("a"), b"second")

    assert await cache.get(keys("a")) == b"second"


async def test_delete_removes_keys_and_ignores_absent_ones(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"1")
    await cache.set(keys("b"), b"2")
    await cache.set(keys("c"), b"3")

    await cache.delete(keys("a"), keys("b"), keys("never-set"))

    assert await cache.get(keys("a")) is None
    assert await cache.get(keys("b")) is None
    assert await cache.get(keys("c")) == b"3"


async def test_delete_without_keys_does_nothing(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"1")

    await cache.delete()

    assert await cache.get(keys("a")) == b"1"


async def test_entry_expires_after_ttl(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("short"), b"v", ttl=0.2)
    await cache.set(keys("forever"), b"v")

    assert await cache.get(keys("short")) == b"v"
    await asyncio.sleep(0.4)

    assert await cache.get(keys("short")) is None
    assert await cache.get(keys("forever")) == b"v"


async def test_overwriting_without_ttl_removes_the_earlier_ttl(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"old", ttl=0.2)
    await cache.set(keys("a"), b"new")
    await asyncio.sleep(0.4)

    assert await cache.get(keys("a")) == b"new"


async def test_non_positive_ttl_stores_nothing(cache: Cache, keys: Keys) -> None:
    await cache.set(keys("a"), b"old")

    await cache.set(keys("a"), b"new", ttl=0)

    assert await cache.get(keys("a")) is None


async def test_redis_ping_against_a_closed_port_raises_unavailable() -> None:
    # Port 1 (tcpmux) has no listener on any sane host: connection refused, immediately.
    adapter = cache_redis.create("redis://127.0.0.1:1/0")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"^redis: "):
            await adapter.ping()
        with pytest.raises(Unavailable, match=r"^redis: "):
            await adapter.get("obp-test:any")
        assert time.monotonic() - started < 30
    finally:
        await adapter.close()


async def test_put_versioned_stores_when_absent_and_get_versioned_returns_it(
    cache: Cache, keys: Keys
) -> None:
    assert await cache.get_versioned(keys("v")) is None

    assert await cache.put_versioned(keys("v"), b"first", version=0) is True

    assert await cache.get_versioned(keys("v")) == (0, b"first")


async def test_put_versioned_replaces_only_a_strictly_older_version(
    cache: Cache, keys: Keys
) -> None:
    await cache.put_versioned(keys("v"), b"seven", version=7)

    assert await cache.put_versioned(keys("v"), b"six", version=6) is False
    assert await cache.put_versioned(keys("v"), b"seven again", version=7) is False
    assert await cache.get_versioned(keys("v")) == (7, b"seven")
    assert await cache.put_versioned(keys("v"), b"eight", version=8) is True
    assert await cache.get_versioned(keys("v")) == (8, b"eight")


async def test_versions_compare_as_numbers_not_as_text(cache: Cache, keys: Keys) -> None:
    await cache.put_versioned(keys("v"), b"nine", version=9)
    assert await cache.put_versioned(keys("v"), b"ten", version=10) is True
    assert await cache.put_versioned(keys("v"), b"two", version=2) is False
    largest = 10**20 - 1
    assert await cache.put_versioned(keys("v"), b"largest", version=largest) is True
    assert await cache.get_versioned(keys("v")) == (largest, b"largest")


async def test_put_versioned_refuses_versions_outside_twenty_digits(
    cache: Cache, keys: Keys
) -> None:
    for version in (-1, 10**20):
        with pytest.raises(ValueError, match="version"):
            await cache.put_versioned(keys("v"), b"x", version=version)
    assert await cache.get_versioned(keys("v")) is None


async def test_versioned_values_keep_arbitrary_bytes(cache: Cache, keys: Keys) -> None:
    binary = bytes(range(256)) + b"00000000000000000000"
    await cache.put_versioned(keys("binary"), binary, version=3)
    await cache.put_versioned(keys("empty"), b"", version=1)

    assert await cache.get_versioned(keys("binary")) == (3, binary)
    assert await cache.get_versioned(keys("empty")) == (1, b"")


async def test_a_versioned_entry_expires_and_then_any_version_may_take_its_place(
    cache: Cache, keys: Keys
) -> None:
    await cache.put_versioned(keys("v"), b"new", version=5, ttl=0.2)
    await asyncio.sleep(0.4)

    assert await cache.get_versioned(keys("v")) is None
    assert await cache.put_versioned(keys("v"), b"old", version=1) is True
    assert await cache.get_versioned(keys("v")) == (1, b"old")


async def test_a_newer_version_with_a_non_positive_ttl_removes_the_older_entry(
    cache: Cache, keys: Keys
) -> None:
    await cache.put_versioned(keys("v"), b"old", version=1)

    assert await cache.put_versioned(keys("v"), b"gone", version=2, ttl=0) is True
    assert await cache.get_versioned(keys("v")) is None

    await cache.put_versioned(keys("w"), b"kept", version=5)
    assert await cache.put_versioned(keys("w"), b"stale", version=4, ttl=-1) is False
    assert await cache.get_versioned(keys("w")) == (5, b"kept")


async def test_delete_removes_a_versioned_entry(cache: Cache, keys: Keys) -> None:
    await cache.put_versioned(keys("v"), b"x", version=9)

    await cache.delete(keys("v"))

    assert await cache.get_versioned(keys("v")) is None
    assert await cache.put_versioned(keys("v"), b"y", version=1) is True


async def test_concurrent_versioned_writers_leave_the_highest_version(
    cache: Cache, keys: Keys
) -> None:
    versions = list(range(1, 101))
    random.Random(7).shuffle(versions)

    outcomes = await asyncio.gather(
        *(cache.put_versioned(keys("race"), f"v{v}".encode(), version=v) for v in versions)
    )

    assert await cache.get_versioned(keys("race")) == (100, b"v100")
    assert any(outcomes)

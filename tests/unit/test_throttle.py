"""Login throttling over the cache port: lock after N failures, growing backoff, reset."""

from __future__ import annotations

import pytest

from obp.adapters.cache_memory import MemoryCache
from obp.services.iam.throttle import LoginThrottle


class FakeClock:
    """Wall-clock seconds the test moves by hand (shared by the throttle and the cache)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """The time every part of one test sees."""
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> MemoryCache:
    """An in-process cache whose TTLs follow the fake clock."""
    return MemoryCache(clock=clock)


@pytest.fixture
def throttle(cache: MemoryCache, clock: FakeClock) -> LoginThrottle:
    """5 failures, then 30 s doubling up to 15 min, forgotten after 15 min of quiet."""
    return LoginThrottle(cache, clock=clock)


async def _fail(throttle: LoginThrottle, times: int, login: str = "alice") -> list[float | None]:
    return [await throttle.failed(namespace="acme", login=login) for _ in range(times)]


async def test_no_lock_below_the_threshold(throttle: LoginThrottle) -> None:
    assert await _fail(throttle, 4) == [None] * 4
    assert await throttle.check(namespace="acme", login="alice") is None


async def test_locks_after_five_failures_with_growing_retry_after(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    results = await _fail(throttle, 5)
    assert results[-1] == 30.0
    assert await throttle.check(namespace="acme", login="alice") == 30.0

    clock.now += 10
    assert await throttle.check(namespace="acme", login="alice") == 20.0

    clock.now += 20  # the lock is over: one more try, and it fails
    assert await throttle.check(namespace="acme", login="alice") is None
    assert await throttle.failed(namespace="acme", login="alice") == 60.0

    clock.now += 60
    assert await throttle.failed(namespace="acme", login="alice") == 120.0
    assert await throttle.check(namespace="acme", login="alice") == 120.0


async def test_backoff_is_capped(throttle: LoginThrottle, clock: FakeClock) -> None:
    waits = []
    for _ in range(15):
        wait = await throttle.failed(namespace="acme", login="alice")
        waits.append(wait)
        clock.now += wait or 0

    assert waits[4:10] == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0]
    assert set(waits[10:]) == {900.0}


async def test_failures_during_a_lock_keep_escalating_it(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await _fail(throttle, 7)  # locked 30, then 60, then 120 s from now
    clock.now += 1

    assert await throttle.check(namespace="acme", login="alice") == 119.0


async def test_success_resets(throttle: LoginThrottle) -> None:
    await _fail(throttle, 5)
    await throttle.succeeded(namespace="acme", login="alice")

    assert await throttle.check(namespace="acme", login="alice") is None
    assert await _fail(throttle, 4) == [None] * 4  # counting starts over


async def test_failures_are_forgotten_after_a_quiet_window(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await _fail(throttle, 4)
    clock.now += 15 * 60

    assert await _fail(throttle, 4) == [None] * 4


async def test_escalation_is_forgotten_a_window_after_the_lock_ends(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await _fail(throttle, 6)  # locked for 60 s
    clock.now += 60 + 15 * 60

    assert await _fail(throttle, 5) == [None, None, None, None, 30.0]


async def test_logins_and_namespaces_are_counted_apart(throttle: LoginThrottle) -> None:
    await _fail(throttle, 5, login="alice")

    assert await throttle.check(namespace="acme", login="bob") is None
    assert await throttle.check(namespace="other", login="alice") is None
    assert await throttle.check(namespace="acme", login="ALICE") == 30.0  # case-folded


async def test_keys_start_with_the_namespace_and_hide_the_login(
    throttle: LoginThrottle, cache: MemoryCache
) -> None:
    await _fail(throttle, 1, login="alice@example.com")
    key = throttle.key(namespace="acme", login="alice@example.com")

    assert key.startswith("acme:")
    assert "alice" not in key
    assert await cache.get(key) is not None
    assert len(cache) == 1
    assert b"alice" not in (await cache.get(key) or b"")


async def test_a_key_secret_changes_the_digest(cache: MemoryCache) -> None:
    plain = LoginThrottle(cache)
    keyed = LoginThrottle(cache, key_secret=b"k" * 32)

    assert plain.key(namespace="acme", login="alice") != keyed.key(namespace="acme", login="alice")


async def test_entries_expire_from_the_cache(
    throttle: LoginThrottle, cache: MemoryCache, clock: FakeClock
) -> None:
    await _fail(throttle, 5)  # locked 30 s, remembered 15 min after that
    key = throttle.key(namespace="acme", login="alice")
    clock.now += 30 + 15 * 60

    assert await cache.get(key) is None


async def test_an_unreadable_entry_counts_as_none(
    throttle: LoginThrottle, cache: MemoryCache
) -> None:
    await cache.set(throttle.key(namespace="acme", login="alice"), b"{not json")

    assert await throttle.check(namespace="acme", login="alice") is None
    assert await throttle.failed(namespace="acme", login="alice") is None


def test_settings_are_validated(cache: MemoryCache) -> None:
    with pytest.raises(ValueError, match="max_failures"):
        LoginThrottle(cache, max_failures=0)
    with pytest.raises(ValueError, match="max_lockout"):
        LoginThrottle(cache, base_lockout=60, max_lockout=30)

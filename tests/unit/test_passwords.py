"""Password hashing off the event loop, behind a bound, and the password rules."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable
from typing import Any

import argon2
import pytest

from obp.kernel.errors import InvalidInput
from obp.services.iam.passwords import PasswordHasher, PasswordRules, default_max_concurrency

# Cheap parameters for tests that only check behaviour, not cost.
FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


async def test_hash_then_verify_round_trips() -> None:
    hasher = PasswordHasher(**FAST)
    stored = await hasher.hash("correct horse battery staple")

    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert await hasher.verify(stored, "correct horse battery staple") is True


async def test_wrong_password_is_false_not_an_error() -> None:
    hasher = PasswordHasher(**FAST)
    stored = await hasher.hash("correct horse battery staple")

    assert await hasher.verify(stored, "correct horse battery stapler") is False
    assert await hasher.verify(stored, "") is False


async def test_a_damaged_stored_hash_verifies_nothing() -> None:
    hasher = PasswordHasher(**FAST)

    assert await hasher.verify("not-a-hash", "whatever") is False
    assert await hasher.verify("$argon2id$v=19$m=1024,t=1,p=1$AAAA$BBBB", "whatever") is False


async def test_the_same_password_hashes_differently_each_time() -> None:
    hasher = PasswordHasher(**FAST)

    assert await hasher.hash("same password!") != await hasher.hash("same password!")


async def test_unicode_forms_of_one_password_verify_alike() -> None:
    hasher = PasswordHasher(**FAST)
    stored = await hasher.hash("caf\u00e9 au lait 2024")  # composed e-acute

    assert await hasher.verify(stored, "cafe\u0301 au lait 2024")  # e + combining accent


async def test_default_parameters_are_owasp_argon2id() -> None:
    stored = await PasswordHasher(max_concurrency=2).hash("correct horse battery staple")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_needs_rehash_when_parameters_change() -> None:
    old = PasswordHasher(**FAST)
    new = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    stored = await old.hash("correct horse battery staple")

    assert old.needs_rehash(stored) is False
    assert new.needs_rehash(stored) is True
    assert new.needs_rehash("garbage") is True
    assert await new.verify(stored, "correct horse battery staple")  # still verifies


async def test_verify_nothing_is_false_and_costs_a_verify() -> None:
    hasher = PasswordHasher(max_concurrency=1)
    stored = await hasher.hash("correct horse battery staple")

    # Interleaved, best of several: both are the same argon2 computation.
    verify_times, nothing_times = [], []
    for _ in range(5):
        verify_times.append(await _seconds(hasher.verify(stored, "wrong guess of a password")))
        nothing_times.append(await _seconds(hasher.verify_nothing("wrong guess of a password")))

    assert await hasher.verify_nothing("anything") is False
    ratio = min(nothing_times) / min(verify_times)
    assert 0.5 < ratio < 2.0, (verify_times, nothing_times)


async def _seconds(operation: Awaitable[object]) -> float:
    started = time.perf_counter()
    await operation
    return time.perf_counter() - started


async def test_hashing_does_not_block_the_event_loop() -> None:
    hasher = PasswordHasher(max_concurrency=2)  # OWASP cost: about 25 ms per hash
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.002)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    hashes = await asyncio.gather(*(hasher.hash(f"password number {i}") for i in range(8)))
    elapsed = time.perf_counter() - started
    stop.set()
    await ticking

    during = [t for t in ticks if started <= t <= started + elapsed]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(set(hashes)) == 8
    # Eight hashes two at a time take at least four hash durations; a loop that hashed
    # itself would not tick at all meanwhile, and its gaps would be a full hash long.
    assert len(during) >= 10, (len(during), elapsed)
    assert max(gaps) < elapsed / 2, (max(gaps), elapsed)


async def test_never_more_hashes_in_flight_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    original = argon2.PasswordHasher.hash

    def counting(self: argon2.PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.02)  # hold the slot long enough for the others to pile up
            return original(self, password, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(argon2.PasswordHasher, "hash", counting)
    hasher = PasswordHasher(**FAST, max_concurrency=3)
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(hasher.in_flight)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(
        *(hasher.hash(f"password {i}") for i in range(6)),
        *(hasher.verify_nothing(f"guess {i}") for i in range(6)),
    )
    watcher.cancel()

    assert peak == 3
    assert max(seen) <= 3
    assert hasher.in_flight == 0


def test_default_bound_is_at_least_two() -> None:
    assert default_max_concurrency() >= 2
    assert PasswordHasher().max_concurrency == default_max_concurrency()
    with pytest.raises(ValueError, match="max_concurrency"):
        PasswordHasher(max_concurrency=0)


def test_rules_name_the_minimum_length() -> None:
    rules = PasswordRules()

    with pytest.raises(InvalidInput) as caught:
        rules.check("short pass")

    assert caught.value.errors[0].loc == ("password",)
    assert "at least 12 characters" in caught.value.errors[0].msg
    assert "short pass" not in caught.value.detail  # the password is never echoed


def test_rules_accept_within_bounds_and_name_the_maximum() -> None:
    rules = PasswordRules(min_length=8, max_length=20)

    assert rules.check("eight ch") == "eight ch"
    with pytest.raises(InvalidInput, match="at most 20 characters"):
        rules.check("x" * 21)
    with pytest.raises(InvalidInput, match="whitespace"):
        rules.check(" " * 10)


def test_default_rules_allow_long_passphrases_up_to_1024() -> None:
    rules = PasswordRules()

    assert rules.check("a" * 1024)
    with pytest.raises(InvalidInput, match="at most 1024"):
        rules.check("a" * 1025)


@pytest.mark.parametrize(("minimum", "maximum"), [(0, 10), (10, 5), (12, 5000)])
def test_rules_themselves_are_validated(minimum: int, maximum: int) -> None:
    with pytest.raises(InvalidInput):
        PasswordRules(min_length=minimum, max_length=maximum)

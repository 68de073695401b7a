"""Password hashing (argon2id, off the event loop, behind a concurrency bound) and password rules.

Hashing is deliberately slow and memory-hard, so it never runs on the event loop: each hash
runs in a worker thread (argon2-cffi releases the GIL while it computes), and a semaphore
bounds how many run at once, so a burst of logins queues up instead of starving every other
request of CPU and memory (each hash holds `memory_cost` KiB while it runs).
"""

from __future__ import annotations

import asyncio
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import argon2
import structlog
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from obp.kernel.errors import InvalidInput

log = structlog.get_logger("obp.iam")

# OWASP's argon2id baseline: 19 MiB, 2 passes, one lane (about 25 ms on one core).
DEFAULT_TIME_COST = 2
DEFAULT_MEMORY_COST_KIB = 19_456
DEFAULT_PARALLELISM = 1

DEFAULT_MIN_LENGTH = 12
DEFAULT_MAX_LENGTH = 1024

T = TypeVar("T")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may actually use
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def default_max_concurrency() -> int:
    """One hash per usable CPU, at least 2.

    With `parallelism=1` a hash keeps one core busy for its whole run, so more hashes in
    flight than cores only adds memory (and threads) without finishing any sooner; the
    waiters queue cheaply on the semaphore instead.
    """
    return max(2, _cpu_count())


def normalize(password: str) -> str:
    """The form a password is hashed and measured in: Unicode NFKC (NIST SP 800-63B 5.1.1.2).

    The same password typed on two keyboards (composed or decomposed accents, full-width
    digits) then hashes the same.
    """
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing and verification in worker threads, at most `max_concurrency` at once."""

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST_KIB,
        parallelism: int = DEFAULT_PARALLELISM,
        hash_len: int = 32,
        salt_len: int = 16,
        max_concurrency: int | None = None,
    ) -> None:
        concurrency = default_max_concurrency() if max_concurrency is None else max_concurrency
        if concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {concurrency}")
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._max_concurrency = concurrency
        # Created on first use, so it binds to the running event loop, not the constructor's.
        self._semaphore: asyncio.Semaphore | None = None
        self._in_flight = 0

    @property
    def max_concurrency(self) -> int:
        """The most hashes computed at the same time."""
        return self._max_concurrency

    @property
    def in_flight(self) -> int:
        """Hashes being computed right now (not counting those waiting for a slot)."""
        return self._in_flight

    async def hash(self, password: str) -> str:
        """The argon2id hash of `password` (PHC string format, salt and parameters included)."""
        return await self._run(self._argon2.hash, normalize(password))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` matches `stored_hash`; False (never an error) when it does not."""
        return await self._run(self._verify, stored_hash, normalize(password))

    async def verify_nothing(self, password: str) -> bool:
        """Spend what `verify` spends, for a login that does not exist; always False.

        Verifying recomputes the hash with the stored salt and parameters, so hashing the
        password with the same parameters (and discarding it) takes the same time, queues on
        the same semaphore, and a failed login then takes as long whether the login exists
        or not.
        """
        await self._run(self._argon2.hash, normalize(password))
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether `stored_hash` was made with other parameters (rehash after a good login)."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            # A damaged or foreign hash: nobody can log in with it. Never log the hash itself.
            log.warning("stored password hash is not a valid argon2 hash")
            return False

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._max_concurrency)
        async with self._semaphore:
            self._in_flight += 1
            try:
                return await asyncio.to_thread(function, *args)
            finally:
                self._in_flight -= 1


@dataclass(frozen=True, slots=True)
class PasswordRules:
    """What a new password must satisfy (configurable per namespace)."""

    min_length: int = DEFAULT_MIN_LENGTH
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= DEFAULT_MAX_LENGTH:
            raise InvalidInput.field(
                ("min_length",),
                f"must be between 1 and {DEFAULT_MAX_LENGTH}, got {self.min_length}",
            )
        if not self.min_length <= self.max_length <= DEFAULT_MAX_LENGTH:
            raise InvalidInput.field(
                ("max_length",),
                f"must be between min_length ({self.min_length}) and {DEFAULT_MAX_LENGTH}, "
                f"got {self.max_length}",
            )

    def check(self, password: str) -> str:
        """Return `password` if it satisfies the rules, else `InvalidInput` naming the rule.

        Lengths count Unicode characters of the normalized password (see `normalize`).
        """
        length = len(normalize(password))
        if length < self.min_length:
            raise InvalidInput.field(
                ("password",),
                f"must be at least {self.min_length} characters long (got {length})",
            )
        if length > self.max_length:
            raise InvalidInput.field(
                ("password",),
                f"must be at most {self.max_length} characters long (got {length})",
            )
        if not password.strip():
            raise InvalidInput.field(("password",), "must not be only whitespace")
        return password

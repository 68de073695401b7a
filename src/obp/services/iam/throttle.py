"""Login throttling: repeated failed logins for one login name back off, on every replica.

The state lives in the `Cache` port (memory or Redis), so replicas sharing Redis share it.
Per (namespace, login) the cache holds the number of recent failures and, once there were
`max_failures` of them, the time until which logins are refused. Each failure from the
`max_failures`-th on locks the login again, twice as long as the previous time
(`base_lockout`, doubling, capped at `max_lockout`). Failures are forgotten once `window`
seconds pass without a new one after the last lockout ends, or at the first success.

The throttle never asks whether the login exists: callers record failures for unknown
logins too, so a 429 (and its Retry-After) says nothing about which logins are real.

Limits, on purpose:
- The cache port offers only get/set/delete, so an update is read-modify-write: two
  failures at the same instant on two replicas may count once. That loses at most the
  attempts that were concurrently in flight, each of which still paid a full argon2 hash;
  throttling slows guessing down, it does not count exactly.
- A cache may drop entries (LRU, restart of an in-memory cache): the count then starts over.
- The lock is per login, so someone who knows a login can keep it locked; `max_lockout`
  caps how long each lock lasts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from obp.kernel.ports import Cache

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW = 15 * 60.0
DEFAULT_BASE_LOCKOUT = 30.0
DEFAULT_MAX_LOCKOUT = 15 * 60.0


@dataclass(frozen=True, slots=True)
class _State:
    failures: int
    locked_until: float
    last_failure: float

    def encode(self) -> bytes:
        return json.dumps(
            {"n": self.failures, "until": self.locked_until, "last": self.last_failure},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _State | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(int(data["n"]), float(data["until"]), float(data["last"]))
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable entry counts as none (it is only a throttle)


class LoginThrottle:
    """Counts failed logins per (namespace, login) and says how long to wait when locked."""

    def __init__(
        self,
        cache: Cache,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window: float = DEFAULT_WINDOW,
        base_lockout: float = DEFAULT_BASE_LOCKOUT,
        max_lockout: float = DEFAULT_MAX_LOCKOUT,
        key_secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`key_secret`, when given, keys the login digest (HMAC), so that someone who reads
        the cache cannot test guessed logins against it; all replicas must share it.

        `clock` is wall-clock seconds: replicas compare each other's timestamps.
        """
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if window <= 0 or base_lockout <= 0 or max_lockout < base_lockout:
            raise ValueError(
                "window and base_lockout must be positive and max_lockout at least base_lockout"
            )
        self._max_failures = max_failures
        self._window = window
        self._base_lockout = base_lockout
        self._max_lockout = max_lockout
        self._cache = cache
        self._secret = key_secret
        self._clock = clock

    def key(self, *, namespace: str, login: str) -> str:
        """The cache key: the namespace first (DESIGN.md 3), the login only as a digest.

        The login is case-folded first, so varying its case does not start a new count.
        """
        material = namespace.encode() + b"\x00" + login.casefold().encode()
        if self._secret is None:
            digest = hashlib.sha256(material).hexdigest()
        else:
            digest = hmac.new(self._secret, material, hashlib.sha256).hexdigest()
        return f"{namespace}:iam:login-failures:{digest}"

    async def check(self, *, namespace: str, login: str) -> float | None:
        """Seconds to wait before the next attempt (for Retry-After; round up), or None."""
        state = _State.decode(await self._cache.get(self.key(namespace=namespace, login=login)))
        if state is None:
            return None
        remaining = state.locked_until - self._clock()
        return remaining if remaining > 0 else None

    async def failed(self, *, namespace: str, login: str) -> float | None:
        """Record a failed attempt; the seconds the login is now locked for, or None."""
        key = self.key(namespace=namespace, login=login)
        now = self._clock()
        state = _State.decode(await self._cache.get(key))
        if state is None or now - max(state.last_failure, state.locked_until) >= self._window:
            failures = 1
        else:
            failures = state.failures + 1
        lockout = self._lockout(failures)
        locked_until = now + lockout if lockout else 0.0
        if state is not None and state.locked_until > locked_until:
            locked_until = state.locked_until  # a failure never shortens a running lock
        new = _State(failures, locked_until, now)
        # Kept until `window` after the later of this failure and the end of the lock.
        await self._cache.set(key, new.encode(), ttl=max(now, locked_until) - now + self._window)
        return locked_until - now if locked_until > now else None

    async def succeeded(self, *, namespace: str, login: str) -> None:
        """A successful login forgets the failures."""
        await self._cache.delete(self.key(namespace=namespace, login=login))

    def _lockout(self, failures: int) -> float:
        over = failures - self._max_failures
        if over < 0:
            return 0.0
        # Exponent capped so a long-running attack cannot overflow the float.
        return min(self._base_lockout * 2.0 ** min(over, 64), self._max_lockout)

"""Redis cache (`redis://`, `rediss://`, `unix://`) on redis.asyncio.

Run the server with `maxmemory-policy allkeys-lru` so it behaves as the LRU the port promises.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from obp.kernel.errors import ConfigurationError, Unavailable

# Errors that mean "the server cannot be reached", as opposed to a bug in how we call it.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# A cache that hangs is worse than a miss: fail fast unless the URL says otherwise.
_DEFAULT_TIMEOUTS = {"socket_connect_timeout": 5.0, "socket_timeout": 5.0}

# A versioned entry is its version as 20 zero-padded digits, then the value: versions of equal
# length compare as strings. KEYS[1] the key; ARGV: version, value, and the TTL in ms (0: none,
# -1: store nothing, only remove an older entry). 1 when the entry was older (or absent).
_PUT_VERSIONED = """
local current = redis.call('GET', KEYS[1])
if current and string.len(current) >= 20 then
  local held = string.sub(current, 1, 20)
  if string.match(held, '^%d+$') and held >= ARGV[1] then
    return 0
  end
end
local ttl = tonumber(ARGV[3])
if ttl < 0 then
  redis.call('DEL', KEYS[1])
elseif ttl == 0 then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ttl)
end
return 1
"""
_VERSION_DIGITS = 20


class RedisCache:
    """A Cache on a Redis server; keys are used as given (callers prefix the namespace)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        # Sent by its SHA (EVALSHA), loaded on first use: no I/O here.
        self._put_versioned = client.register_script(_PUT_VERSIONED)

    @property
    def backend(self) -> str:
        """Always `redis`."""
        return "redis"

    async def ping(self) -> None:
        """Return if Redis answers, else raise Unavailable saying why."""
        try:
            await self._client.ping()
        except _UNREACHABLE as exc:
            raise Unavailable(f"redis: {_reason(exc)}") from exc

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired."""
        try:
            value = await self._client.get(key)
        except _UNREACHABLE as exc:
            raise Unavailable(f"redis: {_reason(exc)}") from exc
        # The values are bytes; a client built with decode_responses would hand back str.
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store `value`; with `ttl` (seconds) Redis expires it after that long."""
        try:
            if ttl is None:
                await self._client.set(key, value)
            elif ttl <= 0:
                # Redis rejects PX <= 0; an already-expired entry is simply an absent one.
                await self._client.delete(key)
            else:
                # Round up so a short TTL never becomes "expire immediately".
                await self._client.set(key, value, px=max(1, math.ceil(ttl * 1000)))
        except _UNREACHABLE as exc:
            raise Unavailable(f"redis: {_reason(exc)}") from exc

    async def delete(self, *keys: str) -> None:
        """Remove the keys; absent keys are ignored."""
        if not keys:
            return  # DEL with no keys is a Redis syntax error
        try:
            await self._client.delete(*keys)
        except _UNREACHABLE as exc:
            raise Unavailable(f"redis: {_reason(exc)}") from exc

    async def put_versioned(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> bool:
        """Store `value` as `version` unless the entry is as new; atomic (one Lua script)."""
        if not 0 <= version < 10**_VERSION_DIGITS:
            raise ValueError(f"version must be in 0..{10**_VERSION_DIGITS - 1}, got {version}")
        if ttl is None:
            milliseconds = 0
        elif ttl <= 0:
            milliseconds = -1
        else:
            milliseconds = max(1, math.ceil(ttl * 1000))
        prefix = str(version).zfill(_VERSION_DIGITS).encode()
        try:
            stored = await self._put_versioned(keys=[key], args=[prefix, value, milliseconds])
        except _UNREACHABLE as exc:
            raise Unavailable(f"redis: {_reason(exc)}") from exc
        return bool(stored)

    async def get_versioned(self, key: str) -> tuple[int, bytes] | None:
        """The (version, value) `put_versioned` stored, or None when absent or expired."""
        raw = await self.get(key)
        if raw is None or len(raw) < _VERSION_DIGITS or not raw[:_VERSION_DIGITS].isdigit():
            return None
        return int(raw[:_VERSION_DIGITS]), raw[_VERSION_DIGITS:]

    async def close(self) -> None:
        """Close the client and its connection pool."""
        await self._client.aclose()


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def create(url: str, **options: object) -> RedisCache:
    """A RedisCache for `url`; keyword options go to `redis.asyncio.Redis.from_url`."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            "redis cache URL must start with redis://, rediss:// or unix://, "
            f"got {urlsplit(url).scheme!r}"
        )
    kwargs: dict[str, Any] = {**_DEFAULT_TIMEOUTS, **options}
    try:
        client = redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:
        raise ConfigurationError(f"redis cache URL is invalid: {exc}") from exc
    return RedisCache(client)

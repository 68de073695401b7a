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


class RedisCache:
    """A Cache on a Redis server; keys are used as given (callers prefix the namespace)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

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

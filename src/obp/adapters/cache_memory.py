"""In-process LRU cache bounded by entry count and total bytes (the embedded `memory://` cache)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from obp.kernel.errors import ConfigurationError

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_OPTIONS = ("max_entries", "max_bytes")
# Versions as `put_versioned` takes them: what fits in 20 decimal digits (as in Redis).
VERSION_LIMIT = 10**20


class MemoryCache:
    """A least-recently-used cache of bytes living in this process, with per-entry TTL."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        # Monotonic, so wall-clock jumps (NTP, DST) neither revive nor kill entries early.
        self._clock = clock
        # Insertion order doubles as recency order: the first item is the least recently used.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        # The version of each entry `put_versioned` stored (entries `set` stored have none).
        self._versions: dict[str, int] = {}
        self._bytes = 0

    @property
    def backend(self) -> str:
        """Always `memory`."""
        return "memory"

    @property
    def max_entries(self) -> int:
        """The most entries kept before the least recently used are evicted."""
        return self._max_entries

    @property
    def max_bytes(self) -> int:
        """The most bytes (keys plus values) kept before eviction."""
        return self._max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes currently held, counting keys and values."""
        return self._bytes

    async def ping(self) -> None:
        """Nothing to reach: the cache lives in this process."""

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired; a hit marks it recently used."""
        return self._lookup(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store `value`, evicting least recently used entries to stay within the bounds."""
        self._store(key, value, ttl)

    async def put_versioned(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> bool:
        """Store `value` as `version` unless the entry is as new; atomic (no await inside)."""
        if not 0 <= version < VERSION_LIMIT:
            raise ValueError(f"version must be in 0..{VERSION_LIMIT - 1}, got {version}")
        current = self._versions.get(key) if self._lookup(key) is not None else None
        if current is not None and current >= version:
            return False
        self._store(key, value, ttl)
        if key in self._entries:
            self._versions[key] = version
        return True

    async def get_versioned(self, key: str) -> tuple[int, bytes] | None:
        """The (version, value) `put_versioned` stored, or None; a hit marks it recently used."""
        value = self._lookup(key)
        version = self._versions.get(key)
        if value is None or version is None:
            return None
        return version, value

    def _lookup(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and self._clock() >= expires_at:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: str, value: bytes, ttl: float | None) -> None:
        self._remove(key)
        if ttl is not None and ttl <= 0:
            return  # already expired: storing it would only evict live entries
        size = _size(key, value)
        if size > self._max_bytes:
            return  # could never fit; a cache may drop anything, so drop this
        expires_at = None if ttl is None else self._clock() + ttl
        self._entries[key] = (bytes(value), expires_at)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    async def delete(self, *keys: str) -> None:
        """Remove the keys; absent keys are ignored."""
        for key in keys:
            self._remove(key)

    async def close(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._versions.clear()
        self._bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        self._versions.pop(key, None)
        if entry is not None:
            self._bytes -= _size(key, entry[0])


def _size(key: str, value: bytes) -> int:
    # Keys count too: many small values under long namespaced keys must still be bounded.
    return len(key.encode()) + len(value)


def create(url: str, **options: object) -> MemoryCache:
    """A MemoryCache from `memory://?max_entries=N&max_bytes=N`; keyword options override."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise ConfigurationError(f"cache URL must start with memory://, got {parts.scheme!r}")
    given: dict[str, object] = dict(parse_qsl(parts.query, keep_blank_values=True))
    given.update(options)
    values: dict[str, int] = {}
    for name, raw in given.items():
        if name not in _OPTIONS:
            raise ConfigurationError(
                f"memory cache option {name!r} is not accepted; accepted: {', '.join(_OPTIONS)}"
            )
        values[name] = _positive_int(name, raw)
    return MemoryCache(
        max_entries=values.get("max_entries", DEFAULT_MAX_ENTRIES),
        max_bytes=values.get("max_bytes", DEFAULT_MAX_BYTES),
    )


def _positive_int(name: str, raw: object) -> int:
    try:
        value = int(str(raw).replace("_", ""))
    except ValueError:
        value = 0
    if value < 1 or isinstance(raw, bool):
        raise ConfigurationError(
            f"memory cache option {name!r} must be a positive integer, got {raw!r}"
        )
    return value

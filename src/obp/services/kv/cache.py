"""Cached key-value entries, kept coherent by versions (see `KvCache`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog

from obp.kernel.errors import Unavailable
from obp.kernel.ports import Cache
from obp.services.kv.model import KvEntry, KvRow

log = structlog.get_logger("obp.kv")

# Larger values are cached as their metadata only: their bytes always come from the database.
MAX_CACHED_VALUE = 64 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Kind(StrEnum):
    """What a cache entry says about a key."""

    VALUE = "value"  # the value and its metadata
    ABSENT = "absent"  # no value (never written, deleted or expired)
    RELOAD = "reload"  # read the database (metadata only, or nothing: an invalidation)


@dataclass(frozen=True, slots=True)
class Cached:
    """A decoded cache entry; `version` is the row version it describes."""

    kind: Kind
    version: int
    content_type: str = ""
    etag: str = ""
    size: int = 0
    expires_at: datetime | None = None
    value: bytes | None = None

    @property
    def has_metadata(self) -> bool:
        """Whether it describes a value (a value entry, or the metadata of a large one)."""
        return self.kind == Kind.VALUE or (self.kind == Kind.RELOAD and self.etag != "")

    def expired(self, now: datetime) -> bool:
        """Whether the value it describes has expired."""
        return self.expires_at is not None and self.expires_at <= now

    def entry(self, key: str) -> KvEntry:
        """The public view of the value it describes."""
        return KvEntry(
            key=key,
            content_type=self.content_type,
            etag=self.etag,
            size=self.size,
            version=self.version,
            expires_at=self.expires_at,
            value=self.value,
        )


def microseconds(moment: datetime) -> int:
    """Whole microseconds since the epoch (exact, unlike float timestamps)."""
    return (moment - _EPOCH) // _MICROSECOND


class KvCache:
    """Key-value entries in the cache port, under versions that only ever go up.

    A row of version v is cached as version 2v (a value, its metadata, or its absence; no row
    at all is version 0), and an invalidation as 2v-1: it evicts anything older than v and
    loses against v itself. So a reader that read the database before a write cannot put the
    old value back over the write's own entry or its invalidation, on one shared Redis or in
    each replica's memory.
    """

    def __init__(self, cache: Cache, *, ttl: float) -> None:
        self._cache = cache
        self._ttl = ttl

    @property
    def ttl(self) -> float:
        """The longest any entry stays cached (seconds)."""
        return self._ttl

    @staticmethod
    def key(namespace: str, incarnation: int, key: str) -> str:
        """The cache key; `incarnation` (when the namespace was created, in microseconds) keeps
        a namespace created again under its name from seeing the old one's entries."""
        return f"kv:{namespace}:{incarnation}:{key}"

    async def read(self, cache_key: str) -> Cached | None:
        """The cached entry, or None on a miss (or when the cache cannot be reached)."""
        try:
            found = await self._cache.get_versioned(cache_key)
        except Unavailable as exc:
            log.warning("kv cache unreachable; reading the database", reason=exc.detail)
            return None
        return None if found is None else _decode(*found)

    async def invalidate(self, cache_key: str, version: int) -> None:
        """Evict what is cached of versions before `version`; `Unavailable` if it cannot."""
        await self._cache.put_versioned(
            cache_key, _encode(Cached(Kind.RELOAD, version)), version=2 * version - 1, ttl=self._ttl
        )

    async def fill(
        self, cache_key: str, row: KvRow | None, *, since: datetime, now: datetime
    ) -> None:
        """Cache what the database said (`row`, or no row); an older fill than what is cached
        loses, and a cache that cannot be reached is skipped."""
        made = self._entry_of(row, since=since, now=now)
        if made is None:
            return
        cached, ttl = made
        try:
            await self._cache.put_versioned(
                cache_key, _encode(cached), version=2 * cached.version, ttl=ttl
            )
        except Unavailable as exc:
            # After a write, its invalidation is already in place: readers go to the database.
            log.warning("kv cache unreachable; entry not cached", reason=exc.detail)

    def _entry_of(
        self, row: KvRow | None, *, since: datetime, now: datetime
    ) -> tuple[Cached, float] | None:
        if row is None or row.created_at < since:
            # No row of this incarnation: any row it ever gets has version 1 or more.
            return Cached(Kind.ABSENT, 0), self._ttl
        if row.live(now=now, since=since):
            small = row.size <= MAX_CACHED_VALUE
            if small and row.value is None:
                # Read without its bytes (HEAD): caching the metadata alone at this version
                # would keep the value itself out of the cache.
                return None
            cached = Cached(
                Kind.VALUE if small else Kind.RELOAD,
                row.version,
                content_type=row.content_type,
                etag=row.etag,
                size=row.size,
                expires_at=row.expires_at,
                value=row.value if small else None,
            )
            # The full TTL even when the value expires sooner (reads check `expires_at`): an
            # entry that left early would let a reader that loaded an older version refill it.
            return cached, self._ttl
        # A tombstone or an expired value. The sweeper deletes such a row two TTLs after it
        # became absent, and the key's next value then starts again at version 1: an entry
        # saying "absent at this version" must be gone before that, so it lives one TTL at most.
        base = row.updated_at if row.tombstone or row.expires_at is None else row.expires_at
        remaining = (base + timedelta(seconds=self._ttl) - now).total_seconds()
        return Cached(Kind.ABSENT, row.version), min(self._ttl, remaining)


def _encode(cached: Cached) -> bytes:
    header = {
        "k": cached.kind.value,
        "v": cached.version,
        "t": cached.content_type,
        "e": cached.etag,
        "s": cached.size,
        "x": None if cached.expires_at is None else microseconds(cached.expires_at),
    }
    # JSON escapes newlines, so the first one ends the header and the value follows as is.
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + (cached.value or b"")


def _decode(version: int, data: bytes) -> Cached | None:
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
        kind = Kind(header["k"])
        expires = header["x"]
        return Cached(
            kind=kind,
            version=int(header["v"]),
            content_type=str(header["t"]),
            etag=str(header["e"]),
            size=int(header["s"]),
            expires_at=None if expires is None else _EPOCH + int(expires) * _MICROSECOND,
            value=body if kind == Kind.VALUE else None,
        )
    except (ValueError, KeyError, TypeError):
        log.warning("kv cache entry unreadable; reading the database", version=version)
        return None

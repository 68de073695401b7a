"""Key-value use cases: conditional writes, cached reads, listing, expiry and purge."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, NotFound, PayloadTooLarge
from obp.kernel.events import Event
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import Cache, UnitOfWork, UnitOfWorkFactory
from obp.kernel.usage import Usage
from obp.services.kv.cache import Kind, KvCache, microseconds
from obp.services.kv.model import (
    KvEntry,
    KvRow,
    Preconditions,
    check_content_type,
    check_key,
    check_prefix,
    check_ttl,
    etag_of,
    successor,
)
from obp.services.kv.repository import KvRepository
from obp.services.namespaces import NamespaceService

EVENT_SERVICE = "kv"
CHANGED = "changed"
log = structlog.get_logger("obp.kv")

# Two writers creating one key race for its first row; the loser reads it and tries again.
_WRITE_ATTEMPTS = 5
_PURGE_BATCH = 1000
_SWEEP_BATCH = 500
NO_CONDITIONS = Preconditions()


class KvService:
    """A tenant's keys and raw values: durable in the database, read through the cache."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        namespaces: NamespaceService,
        access: Access,
        cache: Cache,
        cache_ttl: float = 300.0,
        max_value_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._uow = unit_of_work
        self._namespaces = namespaces
        self._access = access
        self._cache = KvCache(cache, ttl=cache_ttl)
        self._max_value_bytes = max_value_bytes

    async def put(
        self,
        *,
        principal: Principal,
        namespace: str,
        key: str,
        value: bytes,
        content_type: str | None = None,
        ttl: int | None = None,
        conditions: Preconditions = NO_CONDITIONS,
    ) -> tuple[KvEntry, bool]:
        """Store `value` under `key` if the conditions hold; the entry and whether it is new."""
        await self._authorize(principal, namespace, "kv.set", key)
        check_key(key)
        media_type = check_content_type(content_type)
        check_ttl(ttl)
        if len(value) > self._max_value_bytes:
            raise PayloadTooLarge(
                f"the value has {len(value)} bytes; the limit is {self._max_value_bytes} bytes"
            )
        since = (await self._namespaces.lookup(name=namespace)).created_at
        cache_key = KvCache.key(namespace, microseconds(since), key)
        etag = etag_of(media_type, value)
        for _ in range(_WRITE_ATTEMPTS):
            async with self._uow() as uow:
                repository = KvRepository(uow.connection)
                now = utcnow()
                current = await repository.get(namespace, key, with_value=False, for_update=True)
                live = current if current and current.live(now=now, since=since) else None
                conditions.check_write(None if live is None else live.entry(with_value=False))
                row = KvRow(
                    namespace=namespace,
                    key=key,
                    content_type=media_type,
                    etag=etag,
                    size=len(value),
                    # Past tombstones and other incarnations too: versions only go up.
                    version=1 if current is None else current.version + 1,
                    expires_at=None if ttl is None else now + timedelta(seconds=ttl),
                    created_at=now if live is None else live.created_at,
                    updated_at=now,
                    value=value,
                )
                if current is None:
                    if not await repository.insert(row):
                        continue
                else:
                    await repository.replace(row)
                await self._commit_change(uow, row, since=since, by=principal, cache_key=cache_key)
            await self._cache.fill(cache_key, row, since=since, now=utcnow())
            return row.entry(with_value=False), live is None
        raise Conflict(f"key {key!r} is being written concurrently; retry")

    async def get(
        self,
        *,
        principal: Principal,
        namespace: str,
        key: str,
        conditions: Preconditions = NO_CONDITIONS,
        with_value: bool = True,
    ) -> tuple[KvEntry, bool]:
        """The entry (with its bytes if `with_value`), and False when the caller's copy is
        current (`If-None-Match`: no bytes then); `NotFound` if absent or expired."""
        await self._authorize(principal, namespace, "kv.get", key)
        check_key(key)
        since = (await self._namespaces.lookup(name=namespace)).created_at
        cache_key = KvCache.key(namespace, microseconds(since), key)
        cached = await self._cache.read(cache_key)
        if cached is not None and (cached.has_metadata or cached.kind == Kind.ABSENT):
            if not cached.has_metadata or cached.expired(utcnow()):
                raise _missing(namespace, key)
            entry = cached.entry(key)
            if conditions.not_modified(entry):
                return _without_value(entry), False
            if not with_value or entry.value is not None:
                return (entry if with_value else _without_value(entry)), True
        async with self._uow(write=False) as uow:
            row = await KvRepository(uow.connection).get(namespace, key, with_value=with_value)
        now = utcnow()
        await self._cache.fill(cache_key, row, since=since, now=now)
        if row is None or not row.live(now=now, since=since):
            raise _missing(namespace, key)
        entry = row.entry(with_value=with_value)
        if conditions.not_modified(entry):
            return _without_value(entry), False
        return entry, True

    async def delete(
        self,
        *,
        principal: Principal,
        namespace: str,
        key: str,
        conditions: Preconditions = NO_CONDITIONS,
    ) -> bool:
        """Delete the key if the conditions hold; idempotent. Whether there was a value."""
        await self._authorize(principal, namespace, "kv.delete", key)
        check_key(key)
        since = (await self._namespaces.lookup(name=namespace)).created_at
        cache_key = KvCache.key(namespace, microseconds(since), key)
        async with self._uow() as uow:
            repository = KvRepository(uow.connection)
            now = utcnow()
            current = await repository.get(namespace, key, with_value=False, for_update=True)
            live = current if current and current.live(now=now, since=since) else None
            conditions.check_write(None if live is None else live.entry(with_value=False))
            if live is None:
                return False
            # The row stays as a tombstone, so the key's next value continues the count.
            tombstone = KvRow(
                namespace=namespace,
                key=key,
                content_type="",
                etag="",
                size=0,
                version=live.version + 1,
                expires_at=None,
                created_at=live.created_at,
                updated_at=now,
                tombstone=True,
            )
            await repository.replace(tombstone)
            await self._commit_change(
                uow, tombstone, since=since, by=principal, cache_key=cache_key
            )
        await self._cache.fill(cache_key, tombstone, since=since, now=utcnow())
        return True

    async def list(
        self,
        *,
        principal: Principal,
        namespace: str,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[KvEntry]:
        """Live keys in code point order, those starting with `prefix`, one page at a time."""
        start = prefix or ""
        await self._authorize(principal, namespace, "kv.list", f"{start}*")
        check_prefix(start)
        size = validate_limit(limit)
        after = decode_cursor(cursor)
        since = (await self._namespaces.lookup(name=namespace)).created_at
        async with self._uow(write=False) as uow:
            rows = await KvRepository(uow.connection).page(
                namespace,
                since=since,
                now=utcnow(),
                low=start,
                high=successor(start) if start else None,
                after=after,
                limit=size + 1,
            )
        return page_of([r.entry(with_value=False) for r in rows], limit=size, key_of=_key)

    async def usage(self, *, namespace: str, since: datetime) -> Usage:
        """How many live values one incarnation of a namespace holds, and their bytes."""
        async with self._uow(write=False) as uow:
            count, size = await KvRepository(uow.connection).usage(
                namespace, since=since, now=utcnow()
            )
        return Usage(count=count, bytes=size)

    async def forget(self, event: Event) -> None:
        """On every replica: evict what its cache holds of a key older than the change."""
        if event.service != EVENT_SERVICE or event.name != CHANGED:
            return
        payload = event.payload
        cache_key = KvCache.key(event.namespace, int(payload["incarnation"]), str(payload["key"]))
        await self._cache.invalidate(cache_key, int(payload["version"]))

    async def purge_namespace(self, event: Event) -> None:
        """Delete every key a deleted namespace had when it was deleted, in small batches."""
        while True:
            async with self._uow() as uow:
                deleted = await KvRepository(uow.connection).purge(
                    event.namespace, created_before=event.occurred_at, limit=_PURGE_BATCH
                )
                await uow.commit()
            if deleted < _PURGE_BATCH:
                return

    async def sweep_expired(self, *, now: datetime | None = None) -> int:
        """Delete rows expired, or tombstones deleted, more than two cache TTLs ago.

        Two TTLs: no cache entry describing such a row outlives one (see `KvCache`), so the
        key's next value, whose versions start again, never meets one. How many rows went.
        """
        cutoff = (now or utcnow()) - timedelta(seconds=2 * self._cache.ttl)
        total = 0
        while True:
            async with self._uow() as uow:
                deleted = await KvRepository(uow.connection).sweep(
                    expired_before=cutoff, deleted_before=cutoff, limit=_SWEEP_BATCH
                )
                await uow.commit()
            total += deleted
            if deleted < _SWEEP_BATCH:
                return total

    async def _commit_change(
        self, uow: UnitOfWork, row: KvRow, *, since: datetime, by: Principal, cache_key: str
    ) -> None:
        # Invalidated before the commit: once it is visible, no replica serves what it
        # replaced from a shared cache, even if caching the new entry after it fails.
        await self._cache.invalidate(cache_key, row.version)
        uow.emit(
            Event(
                namespace=row.namespace,
                service=EVENT_SERVICE,
                name=CHANGED,
                # Never the value: events reach other services and their logs.
                payload={
                    "key": row.key,
                    "version": row.version,
                    "incarnation": microseconds(since),
                    "op": "deleted" if row.tombstone else "set",
                    "size": row.size,
                    "by": by.identity,
                },
            )
        )
        await uow.commit()

    async def _authorize(self, principal: Principal, namespace: str, action: str, key: str) -> None:
        await self._access.require(
            principal, namespace=namespace, action=action, resource=f"kv:{key}"
        )


def _missing(namespace: str, key: str) -> NotFound:
    return NotFound(f"key {key!r} does not exist in namespace {namespace!r}")


def _without_value(entry: KvEntry) -> KvEntry:
    return replace(entry, value=None)


def _key(entry: KvEntry) -> str:
    return entry.key

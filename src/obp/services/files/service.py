"""File use cases: streamed upload, ranged read, stat, list, delete, purge and sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import structlog

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, NotFound, PreconditionFailed
from obp.kernel.etags import matches
from obp.kernel.events import Event
from obp.kernel.ids import new_id
from obp.kernel.paging import Page, validate_limit
from obp.kernel.ports import BlobStore, ByteStream, UnitOfWorkFactory
from obp.services.files.model import (
    FileRecord,
    Usage,
    blob_key,
    check_content_type,
    check_name,
    check_prefix,
    is_file_id,
    parse_metadata,
)
from obp.services.files.paging import decode_position, encode_position
from obp.services.files.repository import FileRepository
from obp.services.files.upload import HashingStream, UploadFields
from obp.services.namespaces import NamespaceService

EVENT_SERVICE = "files"
_BATCH = 100
log = structlog.get_logger("obp.files")


class FileService:
    """A tenant's files: bytes in the blob store, one row each, visible once durable."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        blobs: BlobStore,
        namespaces: NamespaceService,
        access: Access,
        max_file_bytes: int,
        lease_seconds: float = 60.0,
    ) -> None:
        self._uow = unit_of_work
        self._blobs = blobs
        self._namespaces = namespaces
        self._access = access
        self._max_file_bytes = max_file_bytes
        self._lease = timedelta(seconds=lease_seconds)

    async def upload(
        self,
        *,
        principal: Principal,
        namespace: str,
        fields: UploadFields,
        chunks: AsyncIterator[bytes],
    ) -> FileRecord:
        """Stream `chunks` into a new file; no row and no blob remain if anything fails."""
        file_id = new_id()
        await self._access.require(
            principal, namespace=namespace, action="files.write", resource=f"files:{file_id}"
        )
        if fields.name is not None:  # known up front (raw body): refuse bad input before reading
            _checked(fields)
        await self._namespaces.lookup(name=namespace)
        now = utcnow()
        async with self._uow() as uow:
            await FileRepository(uow.connection).add_pending(
                namespace=namespace,
                file_id=file_id,
                name=fields.name or "",
                content_type="application/octet-stream",
                created_at=now,
                created_by=principal.identity,
                lease_until=now + self._lease,
            )
            await uow.commit()
        try:
            stream = HashingStream(chunks, limit=self._max_file_bytes)
            renewal = asyncio.create_task(self._renew(namespace, file_id))
            try:
                await self._blobs.put(blob_key(namespace, file_id), stream)
            finally:
                renewal.cancel()
                # Never its outcome: a renewal that failed must not fail a finished upload.
                await asyncio.gather(renewal, return_exceptions=True)
            name, content_type, metadata = _checked(fields)
            record = FileRecord(
                namespace=namespace,
                id=file_id,
                name=name,
                content_type=content_type,
                size=stream.size,
                sha256=stream.sha256,
                metadata=metadata,
                created_at=now,
                created_by=principal.identity,
            )
            async with self._uow() as uow:
                if not await FileRepository(uow.connection).complete(record):
                    raise Conflict("the upload took too long and was discarded; retry")
                uow.emit(_event(record, "uploaded", by=principal))
                await uow.commit()
        except BaseException:
            # Shielded: a cancelled request (client gone) must still leave nothing behind.
            await asyncio.shield(self._discard(namespace, file_id))
            raise
        return record

    async def stat(self, *, principal: Principal, namespace: str, file_id: str) -> FileRecord:
        """A file's record (size, sha256, name, content type, metadata, created_at)."""
        await self._access.require(
            principal, namespace=namespace, action="files.read", resource=f"files:{file_id}"
        )
        since = (await self._namespaces.lookup(name=namespace)).created_at
        if not is_file_id(file_id):
            raise NotFound(f"file {file_id!r} does not exist in namespace {namespace!r}")
        async with self._uow(write=False) as uow:
            record = await FileRepository(uow.connection).get(namespace, file_id, since=since)
        if record is None:
            raise NotFound(f"file {file_id!r} does not exist in namespace {namespace!r}")
        return record

    async def read(
        self, *, record: FileRecord, offset: int = 0, length: int | None = None
    ) -> ByteStream:
        """The bytes [offset, offset+length) of a file obtained from `stat`."""
        try:
            return await self._blobs.read(record.blob_key, offset=offset, length=length)
        except NotFound as exc:  # deleted between stat and read
            raise NotFound(f"file {record.id!r} does not exist") from exc

    async def list(
        self,
        *,
        principal: Principal,
        namespace: str,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[FileRecord]:
        """Files in name order, names starting with `prefix`."""
        await self._access.require(
            principal, namespace=namespace, action="files.list", resource="files:*"
        )
        size = validate_limit(limit)
        prefix = check_prefix(prefix)
        after = decode_position(cursor)
        since = (await self._namespaces.lookup(name=namespace)).created_at
        async with self._uow(write=False) as uow:
            items = await FileRepository(uow.connection).page(
                namespace, since=since, prefix=prefix, after=after, limit=size + 1
            )
        more = len(items) > size
        items = items[:size]
        last = items[-1] if more else None
        return Page(items=items, next_cursor=None if last is None else encode_position(last))

    async def delete(
        self,
        *,
        principal: Principal,
        namespace: str,
        file_id: str,
        if_match: tuple[str, ...] | None = None,
    ) -> None:
        """Delete a file and its bytes; idempotent; `PreconditionFailed` if `if_match` fails."""
        await self._access.require(
            principal, namespace=namespace, action="files.delete", resource=f"files:{file_id}"
        )
        since = (await self._namespaces.lookup(name=namespace)).created_at
        if not is_file_id(file_id):
            return
        async with self._uow() as uow:
            repository = FileRepository(uow.connection)
            record = await repository.get(namespace, file_id, since=since)
            if record is None:
                return
            if if_match is not None and not matches(if_match, record.etag, weak=False):
                raise PreconditionFailed(f"If-Match: file {file_id!r} has another etag")
            # Hidden first, under a lease: if we die before the bytes are gone, the sweep
            # finishes the job once it lapses, so no blob is ever orphaned.
            await repository.retire(namespace, file_id, until=utcnow() + self._lease)
            uow.emit(_event(record, "deleted", by=principal))
            await uow.commit()
        await self._forget(namespace, file_id)

    async def usage(self, *, namespace: str, since: datetime) -> Usage:
        """Count and bytes of a namespace's files."""
        async with self._uow(write=False) as uow:
            return await FileRepository(uow.connection).usage(namespace, since=since)

    async def purge_namespace(self, event: Event) -> None:
        """Delete every file, bytes first, that a deleted namespace had when it was deleted."""
        while True:
            async with self._uow(write=False) as uow:
                batch = await FileRepository(uow.connection).of_namespace(
                    event.namespace, created_before=event.occurred_at, limit=_BATCH
                )
            for namespace, file_id in batch:
                await self._forget(namespace, file_id)
            if len(batch) < _BATCH:
                return

    async def sweep(self, *, everything: bool = False) -> int:
        """Remove uploads whose uploader died (lease lapsed; `everything` at a lone start)."""
        swept = 0
        while True:
            async with self._uow(write=False) as uow:
                batch = await FileRepository(uow.connection).lapsed(
                    now=None if everything else utcnow(), limit=_BATCH
                )
            claimed = 0
            for namespace, file_id in batch:
                # Claimed first: an upload that completes meanwhile keeps its row and blob, and
                # one that completes after the claim fails instead of losing its bytes later.
                async with self._uow() as uow:
                    mine = await FileRepository(uow.connection).claim(
                        namespace,
                        file_id,
                        lapsed_before=None if everything else utcnow(),
                        until=utcnow() + self._lease,
                    )
                    await uow.commit()
                if mine:
                    await self._forget(namespace, file_id)
                    claimed += 1
            swept += claimed
            if len(batch) < _BATCH:
                if swept:
                    log.info("swept abandoned uploads", count=swept)
                return swept

    async def _renew(self, namespace: str, file_id: str) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._uow() as uow:
                    await FileRepository(uow.connection).extend_lease(
                        namespace, file_id, until=utcnow() + self._lease
                    )
                    await uow.commit()
            except Exception:  # a busy or unreachable database: try again next round
                log.warning("upload lease not renewed", namespace=namespace, id=file_id)

    async def _discard(self, namespace: str, file_id: str) -> None:
        try:
            await self._forget(namespace, file_id)
        except Exception:  # the sweep retries once the lease lapses
            log.exception("failed upload not cleaned up yet", namespace=namespace, id=file_id)

    async def _forget(self, namespace: str, file_id: str) -> None:
        # Bytes before the row: a crash in between leaves a row the next sweep finds again.
        await self._blobs.delete(blob_key(namespace, file_id))
        async with self._uow() as uow:
            await FileRepository(uow.connection).remove(namespace, file_id)
            await uow.commit()


def _checked(fields: UploadFields) -> tuple[str, str, dict[str, object]]:
    name = check_name(fields.name or "", loc=fields.loc("name"))
    content_type = check_content_type(fields.content_type, loc=fields.loc("content_type"))
    metadata = parse_metadata(fields.metadata, loc=fields.loc("metadata"))
    return name, content_type, metadata


def _event(record: FileRecord, name: str, *, by: Principal) -> Event:
    return Event(
        namespace=record.namespace,
        service=EVENT_SERVICE,
        name=name,
        payload={
            "id": record.id,
            "name": record.name,
            "size": record.size,
            "by": by.identity,
        },
    )

"""Persistence of file rows, always filtered by namespace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.services.files.model import FileRecord, Usage
from obp.services.files.tables import files

_F = files.c
PENDING = "pending"
# Being removed (a delete, or a sweep that claimed a lapsed upload); swept again if its remover
# dies before the row is gone.
DELETING = "deleting"
_GONE = (PENDING, DELETING)
READY = "ready"


class FileRepository:
    """File rows of one namespace at a time (and the sweeps across them)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add_pending(
        self,
        *,
        namespace: str,
        file_id: str,
        name: str,
        content_type: str,
        created_at: datetime,
        created_by: str,
        lease_until: datetime,
    ) -> None:
        """Record an upload that has started: invisible until `complete`."""
        await self._conn.execute(
            files.insert().values(
                namespace=namespace,
                id=file_id,
                name=name,
                content_type=content_type,
                size=0,
                sha256="",
                metadata={},
                state=PENDING,
                lease_until=lease_until,
                created_at=created_at,
                created_by=created_by,
            )
        )

    async def extend_lease(self, namespace: str, file_id: str, *, until: datetime) -> None:
        """Keep a pending upload from being swept while its bytes still arrive."""
        await self._conn.execute(
            files.update()
            .where((_F.namespace == namespace) & (_F.id == file_id) & (_F.state == PENDING))
            .values(lease_until=until)
        )

    async def complete(self, record: FileRecord) -> bool:
        """Make a pending upload a file; False if it was swept meanwhile."""
        result = await self._conn.execute(
            files.update()
            .where(
                (_F.namespace == record.namespace) & (_F.id == record.id) & (_F.state == PENDING)
            )
            .values(
                name=record.name,
                content_type=record.content_type,
                size=record.size,
                sha256=record.sha256,
                metadata=record.metadata,
                state=READY,
                lease_until=None,
            )
        )
        return result.rowcount == 1

    async def get(self, namespace: str, file_id: str, *, since: datetime) -> FileRecord | None:
        """A ready file created since `since` (this incarnation of the namespace), if any."""
        row = (
            await self._conn.execute(
                sa.select(files).where(
                    (_F.namespace == namespace)
                    & (_F.id == file_id)
                    & (_F.state == READY)
                    & (_F.created_at >= since)
                )
            )
        ).one_or_none()
        return None if row is None else _record(row)

    async def retire(self, namespace: str, file_id: str, *, until: datetime) -> None:
        """Hide a file while its bytes are removed; the sweep finishes if the deleter dies."""
        await self._conn.execute(
            files.update()
            .where((_F.namespace == namespace) & (_F.id == file_id))
            .values(state=DELETING, lease_until=until)
        )

    async def claim(
        self, namespace: str, file_id: str, *, lapsed_before: datetime | None, until: datetime
    ) -> bool:
        """Take a lapsed upload or removal for this sweep; False if it finished or is alive."""
        condition = (_F.namespace == namespace) & (_F.id == file_id) & _F.state.in_(_GONE)
        if lapsed_before is not None:
            condition &= _F.lease_until < lapsed_before
        result = await self._conn.execute(
            files.update().where(condition).values(state=DELETING, lease_until=until)
        )
        return result.rowcount == 1

    async def remove(self, namespace: str, file_id: str) -> None:
        """Delete one row, pending or ready."""
        await self._conn.execute(
            files.delete().where((_F.namespace == namespace) & (_F.id == file_id))
        )

    async def page(
        self,
        namespace: str,
        *,
        since: datetime,
        prefix: str | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> Sequence[FileRecord]:
        """Ready files in (name, id) order after `after`, names starting with `prefix`."""
        query = sa.select(files).where(
            (_F.namespace == namespace) & (_F.state == READY) & (_F.created_at >= since)
        )
        if prefix:
            # substr, not LIKE: LIKE ignores case on SQLite but not on PostgreSQL.
            query = query.where(sa.func.substr(_F.name, 1, len(prefix)) == prefix)
        if after is not None:
            name, file_id = after
            query = query.where((_F.name > name) | ((_F.name == name) & (_F.id > file_id)))
        rows = (await self._conn.execute(query.order_by(_F.name, _F.id).limit(limit))).all()
        return [_record(row) for row in rows]

    async def usage(self, namespace: str, *, since: datetime) -> Usage:
        """Count and total bytes of a namespace's ready files."""
        row = (
            await self._conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_F.size), 0)).where(
                    (_F.namespace == namespace) & (_F.state == READY) & (_F.created_at >= since)
                )
            )
        ).one()
        return Usage(count=int(row[0]), bytes=int(row[1]))

    async def of_namespace(
        self, namespace: str, *, created_before: datetime, limit: int
    ) -> Sequence[tuple[str, str]]:
        """(namespace, id) of rows a deleted namespace left, a batch at a time."""
        rows = (
            await self._conn.execute(
                sa.select(_F.namespace, _F.id)
                .where((_F.namespace == namespace) & (_F.created_at <= created_before))
                .limit(limit)
            )
        ).all()
        return [(row.namespace, row.id) for row in rows]

    async def lapsed(self, *, now: datetime | None, limit: int) -> Sequence[tuple[str, str]]:
        """(namespace, id) of uploads and removals whose lease lapsed before `now` (None: all)."""
        query = sa.select(_F.namespace, _F.id).where(_F.state.in_(_GONE))
        if now is not None:
            query = query.where(_F.lease_until < now)
        rows = (await self._conn.execute(query.limit(limit))).all()
        return [(row.namespace, row.id) for row in rows]


def _record(row: Any) -> FileRecord:
    return FileRecord(
        namespace=row.namespace,
        id=row.id,
        name=row.name,
        content_type=row.content_type,
        size=int(row.size),
        sha256=row.sha256,
        metadata=dict(row.metadata),
        created_at=row.created_at,
        created_by=row.created_by,
    )

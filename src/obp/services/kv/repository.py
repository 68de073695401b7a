"""Persistence of key-value rows, always filtered by namespace (except the expiry sweep)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.tables import execute_unless_conflict
from obp.services.kv.model import KvRow
from obp.services.kv.tables import kv_entries

_K = kv_entries.c
# Everything but the bytes, plus whether there are any: listings and HEAD never load values.
_METADATA = (
    _K.namespace,
    _K.key,
    _K.content_type,
    _K.etag,
    _K.size,
    _K.version,
    _K.expires_at,
    _K.created_at,
    _K.updated_at,
    _K.value.is_(None).label("tombstone"),
)


class KvRepository:
    """Key-value rows of one namespace at a time."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(
        self, namespace: str, key: str, *, with_value: bool, for_update: bool = False
    ) -> KvRow | None:
        """The key's row (tombstone or not, of any incarnation), locked if `for_update`."""
        columns = (*_METADATA, _K.value) if with_value else _METADATA
        query = sa.select(*columns).where((_K.namespace == namespace) & (_K.key == key))
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).one_or_none()
        return None if row is None else _row(row, with_value=with_value)

    async def insert(self, row: KvRow) -> bool:
        """Insert a key's first row; False if a concurrent writer inserted it first."""
        return await execute_unless_conflict(self._conn, kv_entries.insert().values(_values(row)))

    async def replace(self, row: KvRow) -> None:
        """Overwrite the key's row (the caller holds its lock)."""
        await self._conn.execute(
            kv_entries.update()
            .where((_K.namespace == row.namespace) & (_K.key == row.key))
            .values(_values(row))
        )

    async def page(
        self,
        namespace: str,
        *,
        since: datetime,
        now: datetime,
        low: str,
        high: str | None,
        after: str | None,
        limit: int,
    ) -> Sequence[KvRow]:
        """Live rows by key, `low <= key < high`, after `after`; without their bytes."""
        query = sa.select(*_METADATA).where(
            (_K.namespace == namespace)
            & (_K.created_at >= since)
            & _K.value.is_not(None)
            & (_K.expires_at.is_(None) | (_K.expires_at > now))
        )
        if low:
            query = query.where(_K.key >= low)
        if high is not None:
            query = query.where(_K.key < high)
        if after is not None:
            query = query.where(_K.key > after)
        rows = (await self._conn.execute(query.order_by(_K.key).limit(limit))).all()
        return [_row(row, with_value=False) for row in rows]

    async def usage(self, namespace: str, *, since: datetime, now: datetime) -> tuple[int, int]:
        """How many live values the namespace holds, and their bytes."""
        count, size = (
            await self._conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_K.size), 0)).where(
                    (_K.namespace == namespace)
                    & (_K.created_at >= since)
                    & _K.value.is_not(None)
                    & (_K.expires_at.is_(None) | (_K.expires_at > now))
                )
            )
        ).one()
        return int(count), int(size)

    async def purge(self, namespace: str, *, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` rows a deleted namespace had; how many went."""
        doomed = (_K.namespace == namespace) & (_K.created_at <= created_before)
        batch = sa.select(_K.key).where(doomed).limit(limit).scalar_subquery()
        result = await self._conn.execute(kv_entries.delete().where(doomed & _K.key.in_(batch)))
        return result.rowcount

    async def sweep(self, *, expired_before: datetime, deleted_before: datetime, limit: int) -> int:
        """Delete up to `limit` rows, of any namespace, that expired before `expired_before` or
        are tombstones older than `deleted_before`; how many went.

        The one query across namespaces: expiry is platform housekeeping, not a tenant's view.
        """
        doomed = ((_K.expires_at.is_not(None)) & (_K.expires_at < expired_before)) | (
            _K.value.is_(None) & (_K.updated_at < deleted_before)
        )
        # SKIP LOCKED (PostgreSQL): sweepers of several replicas take different rows.
        batch = (
            sa.select(_K.namespace, _K.key)
            .where(doomed)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self._conn.execute(
            kv_entries.delete().where(doomed & sa.tuple_(_K.namespace, _K.key).in_(batch))
        )
        return result.rowcount


def _values(row: KvRow) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "key": row.key,
        "value": None if row.tombstone else (row.value or b""),
        "content_type": row.content_type,
        "etag": row.etag,
        "size": row.size,
        "version": row.version,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _row(row: Any, *, with_value: bool) -> KvRow:
    value = row.value if with_value else None
    return KvRow(
        namespace=row.namespace,
        key=row.key,
        content_type=row.content_type,
        etag=row.etag,
        size=int(row.size),
        version=int(row.version),
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tombstone=bool(row.tombstone),
        value=None if value is None else bytes(value),
    )

"""Persistence of secret versions, always filtered by namespace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.tables import execute_unless_conflict
from obp.services.secrets.model import SecretVersion
from obp.services.secrets.tables import secrets

_S = secrets.c


class SecretRepository:
    """Secret versions of one namespace at a time."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def latest(self, namespace: str, name: str, *, since: datetime) -> SecretVersion | None:
        """The newest version of a secret written since `since`, if any."""
        row = (
            await self._conn.execute(
                sa.select(secrets)
                .where((_S.namespace == namespace) & (_S.name == name) & (_S.created_at >= since))
                .order_by(_S.version.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else _version(row)

    async def version(
        self, namespace: str, name: str, version: int, *, since: datetime
    ) -> SecretVersion | None:
        """One version of a secret, if it exists and was written since `since`."""
        row = (
            await self._conn.execute(
                sa.select(secrets).where(
                    (_S.namespace == namespace)
                    & (_S.name == name)
                    & (_S.version == version)
                    & (_S.created_at >= since)
                )
            )
        ).one_or_none()
        return None if row is None else _version(row)

    async def add(self, secret: SecretVersion) -> bool:
        """Insert a version; False if a concurrent writer took that version number."""
        return await execute_unless_conflict(
            self._conn,
            secrets.insert().values(
                namespace=secret.namespace,
                name=secret.name,
                version=secret.version,
                description=secret.description,
                value_sealed=secret.value_sealed,
                created_at=secret.created_at,
                created_by=secret.created_by,
            ),
        )

    async def next_version(self, namespace: str, name: str) -> int:
        """The number the next version of a secret gets (also past a deleted namespace's)."""
        latest = await self._conn.scalar(
            sa.select(sa.func.max(_S.version)).where(
                (_S.namespace == namespace) & (_S.name == name)
            )
        )
        return 1 if latest is None else int(latest) + 1

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete every version; whether there was any."""
        result = await self._conn.execute(
            secrets.delete().where((_S.namespace == namespace) & (_S.name == name))
        )
        return result.rowcount > 0

    async def latest_versions(
        self,
        namespace: str,
        *,
        since: datetime,
        prefix: str | None,
        after: str | None,
        limit: int,
    ) -> Sequence[SecretVersion]:
        """The newest version of each secret, by name, after `after`, names starting `prefix`."""
        newest = sa.select(_S.name, sa.func.max(_S.version).label("version")).where(
            (_S.namespace == namespace) & (_S.created_at >= since)
        )
        if after is not None:
            newest = newest.where(_S.name > after)
        if prefix:
            # substr, not LIKE: LIKE ignores case on SQLite but not on PostgreSQL.
            newest = newest.where(sa.func.substr(_S.name, 1, len(prefix)) == prefix)
        page = newest.group_by(_S.name).order_by(_S.name).limit(limit).subquery()
        rows = (
            await self._conn.execute(
                sa.select(secrets)
                .join(
                    page,
                    (_S.namespace == namespace)
                    & (_S.name == page.c.name)
                    & (_S.version == page.c.version),
                )
                .order_by(_S.name)
            )
        ).all()
        return [_version(row) for row in rows]

    async def purge(self, namespace: str, *, created_before: datetime) -> int:
        """Delete a deleted namespace's secrets; how many versions went."""
        result = await self._conn.execute(
            secrets.delete().where((_S.namespace == namespace) & (_S.created_at <= created_before))
        )
        return result.rowcount


def _version(row: Any) -> SecretVersion:
    return SecretVersion(
        namespace=row.namespace,
        name=row.name,
        version=row.version,
        description=row.description,
        value_sealed=bytes(row.value_sealed),
        created_at=row.created_at,
        created_by=row.created_by,
    )

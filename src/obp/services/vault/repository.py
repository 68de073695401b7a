"""Persistence of wrapped data keys and sealed key pairs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.tables import execute_unless_conflict
from obp.services.vault.model import DataKey, KeyPair
from obp.services.vault.tables import vault_data_keys, vault_key_pairs

_DK = vault_data_keys.c
_KP = vault_key_pairs.c


class VaultRepository:
    """Data keys and key pairs; only root rotation and start-up look across namespaces."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def active_data_key(self, namespace: str) -> DataKey | None:
        """The data key new data of `namespace` is sealed with, if it has one."""
        return await self._one_data_key((_DK.namespace == namespace) & _DK.active)

    async def data_key(self, namespace: str, key_id: str) -> DataKey | None:
        """One data key of `namespace`, active or retired."""
        return await self._one_data_key((_DK.namespace == namespace) & (_DK.key_id == key_id))

    async def add_data_key(self, key: DataKey) -> bool:
        """Insert a data key; False if another writer made the namespace's active key first."""
        return await execute_unless_conflict(
            self._conn,
            vault_data_keys.insert().values(
                namespace=key.namespace,
                key_id=key.key_id,
                active=key.active,
                wrapped=key.wrapped,
                root_version=key.root_version,
                created_at=key.created_at,
            ),
        )

    async def retire_active_data_key(self, namespace: str) -> None:
        """Keep the active key for reading only."""
        await self._conn.execute(
            vault_data_keys.update()
            .where((_DK.namespace == namespace) & _DK.active)
            .values(active=False)
        )

    async def has_data_keys(self) -> bool:
        """Whether any namespace has a data key (then a missing root key is an error)."""
        return (await self._conn.scalar(sa.select(_DK.key_id).limit(1))) is not None

    async def wrapped_elsewhere(self, root_version: str, *, limit: int) -> Sequence[DataKey]:
        """Data keys not wrapped by `root_version` (what a root rotation still has to do)."""
        rows = (
            await self._conn.execute(
                sa.select(vault_data_keys)
                .where(_DK.root_version != root_version)
                .order_by(_DK.namespace, _DK.key_id)
                .limit(limit)
            )
        ).all()
        return [_data_key(row) for row in rows]

    async def rewrap(self, key: DataKey, *, root_version: str, wrapped: bytes) -> None:
        """Store a data key wrapped again under another root version (the key is unchanged)."""
        await self._conn.execute(
            vault_data_keys.update()
            .where((_DK.namespace == key.namespace) & (_DK.key_id == key.key_id))
            .values(root_version=root_version, wrapped=wrapped)
        )

    async def root_versions_in_use(self) -> set[str]:
        """Every root version some data key is wrapped with."""
        return set((await self._conn.scalars(sa.select(_DK.root_version).distinct())).all())

    async def active_key_pair(self, namespace: str, algorithm: str) -> KeyPair | None:
        """The key pair `namespace` signs with, if any."""
        row = (
            await self._conn.execute(
                sa.select(vault_key_pairs).where(
                    (_KP.namespace == namespace) & (_KP.algorithm == algorithm) & _KP.active
                )
            )
        ).one_or_none()
        return None if row is None else _key_pair(row)

    async def key_pairs(self, namespace: str) -> Sequence[KeyPair]:
        """Every key pair of `namespace`, newest first."""
        rows = (
            await self._conn.execute(
                sa.select(vault_key_pairs)
                .where(_KP.namespace == namespace)
                .order_by(_KP.created_at.desc())
            )
        ).all()
        return [_key_pair(row) for row in rows]

    async def add_key_pair(self, pair: KeyPair) -> bool:
        """Insert a key pair; False if another writer made the active one first."""
        return await execute_unless_conflict(
            self._conn,
            vault_key_pairs.insert().values(
                namespace=pair.namespace,
                kid=pair.kid,
                algorithm=pair.algorithm,
                active=pair.active,
                public_jwk=pair.public_jwk,
                private_sealed=pair.private_sealed,
                created_at=pair.created_at,
                retired_at=pair.retired_at,
            ),
        )

    async def retire_key_pair(self, namespace: str, algorithm: str, *, at: datetime) -> None:
        """Stop signing with the active key pair; it stays listed for verification."""
        await self._conn.execute(
            vault_key_pairs.update()
            .where((_KP.namespace == namespace) & (_KP.algorithm == algorithm) & _KP.active)
            .values(active=False, retired_at=at)
        )

    async def purge(self, namespace: str, *, created_before: datetime) -> int:
        """Destroy the keys of a deleted namespace (crypto-shredding); how many rows went."""
        removed = 0
        for table in (vault_data_keys, vault_key_pairs):
            result = await self._conn.execute(
                table.delete().where(
                    (table.c.namespace == namespace) & (table.c.created_at <= created_before)
                )
            )
            removed += result.rowcount
        return removed

    async def _one_data_key(self, where: sa.ColumnElement[bool]) -> DataKey | None:
        row = (await self._conn.execute(sa.select(vault_data_keys).where(where))).one_or_none()
        return None if row is None else _data_key(row)


def _data_key(row: Any) -> DataKey:
    return DataKey(
        namespace=row.namespace,
        key_id=row.key_id,
        active=bool(row.active),
        wrapped=bytes(row.wrapped),
        root_version=row.root_version,
        created_at=row.created_at,
    )


def _key_pair(row: Any) -> KeyPair:
    return KeyPair(
        namespace=row.namespace,
        kid=row.kid,
        algorithm=row.algorithm,
        active=bool(row.active),
        public_jwk=dict(row.public_jwk),
        private_sealed=bytes(row.private_sealed),
        created_at=row.created_at,
        retired_at=row.retired_at,
    )

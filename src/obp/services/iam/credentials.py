"""Persistence of credentials: API keys, refresh tokens, password hashes and password rules.

Secrets are never stored: API keys and refresh tokens only as their SHA-256 digest (see
`opaque`), passwords only as their argon2id hash. Every statement filters on the namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.tables import execute_unless_conflict
from obp.services.iam.tables import iam_api_keys, iam_identities, iam_refresh_tokens, iam_settings

_K, _T, _S, _I = iam_api_keys.c, iam_refresh_tokens.c, iam_settings.c, iam_identities.c


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of an identity (a service account's credential); the secret is not kept."""

    namespace: str
    id: str
    identity_id: str
    description: str
    created_at: datetime
    revoked_at: datetime | None = None
    digest: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A stored refresh token: its digest, the family it was rotated in, and its state."""

    namespace: str
    digest: str = field(repr=False)
    family_id: str
    identity_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        namespace=row.namespace,
        id=row.id,
        identity_id=row.identity_id,
        description=row.description,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        digest=row.digest,
    )


def _refresh_token(row: Any) -> RefreshToken:
    return RefreshToken(
        namespace=row.namespace,
        digest=row.digest,
        family_id=row.family_id,
        identity_id=row.identity_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
    )


class CredentialRepository:
    """API keys, refresh tokens, password hashes and the namespace's password rules."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    # --- API keys -------------------------------------------------------------------------

    async def add_api_key(self, key: ApiKey) -> None:
        """Store a new API key (its digest, never the key)."""
        await self._conn.execute(
            iam_api_keys.insert().values(
                namespace=key.namespace,
                id=key.id,
                identity_id=key.identity_id,
                digest=key.digest,
                description=key.description,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    async def api_key(self, namespace: str, key_id: str) -> ApiKey | None:
        """One API key of `namespace`, revoked or not."""
        row = (
            await self._conn.execute(
                sa.select(iam_api_keys).where((_K.namespace == namespace) & (_K.id == key_id))
            )
        ).one_or_none()
        return None if row is None else _api_key(row)

    async def api_keys(
        self, namespace: str, identity_id: str, *, after: str | None, limit: int
    ) -> Sequence[ApiKey]:
        """The unrevoked API keys of an identity, by key id."""
        statement = (
            sa.select(iam_api_keys)
            .where(
                (_K.namespace == namespace)
                & (_K.identity_id == identity_id)
                & _K.revoked_at.is_(None)
            )
            .order_by(_K.id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(_K.id > after)
        return [_api_key(row) for row in await self._conn.execute(statement)]

    async def revoke_api_key(
        self, namespace: str, identity_id: str, key_id: str, *, at: datetime
    ) -> bool:
        """Revoke an identity's API key; False if it has no such unrevoked key."""
        result = await self._conn.execute(
            iam_api_keys.update()
            .where(
                (_K.namespace == namespace)
                & (_K.id == key_id)
                & (_K.identity_id == identity_id)
                & _K.revoked_at.is_(None)
            )
            .values(revoked_at=at)
        )
        return result.rowcount > 0

    # --- refresh tokens -------------------------------------------------------------------

    async def add_refresh_token(self, token: RefreshToken) -> None:
        """Store a new refresh token (its digest, never the token)."""
        await self._conn.execute(
            iam_refresh_tokens.insert().values(
                namespace=token.namespace,
                digest=token.digest,
                family_id=token.family_id,
                identity_id=token.identity_id,
                created_at=token.created_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
                revoked_at=token.revoked_at,
            )
        )

    async def refresh_token(self, namespace: str, digest: str) -> RefreshToken | None:
        """The refresh token of `namespace` with this digest, in whatever state."""
        row = (
            await self._conn.execute(
                sa.select(iam_refresh_tokens).where(
                    (_T.namespace == namespace) & (_T.digest == digest)
                )
            )
        ).one_or_none()
        return None if row is None else _refresh_token(row)

    async def mark_refresh_token_used(self, namespace: str, digest: str, *, at: datetime) -> bool:
        """Mark a refresh token used if it is neither used nor revoked; whether this call did.

        One conditional UPDATE, so of two concurrent uses exactly one sees True.
        """
        result = await self._conn.execute(
            iam_refresh_tokens.update()
            .where(
                (_T.namespace == namespace)
                & (_T.digest == digest)
                & _T.used_at.is_(None)
                & _T.revoked_at.is_(None)
            )
            .values(used_at=at)
        )
        return result.rowcount == 1

    async def revoke_refresh_family(self, namespace: str, family_id: str, *, at: datetime) -> int:
        """Revoke every token of a family (rotation chain); how many were still unrevoked."""
        result = await self._conn.execute(
            iam_refresh_tokens.update()
            .where(
                (_T.namespace == namespace) & (_T.family_id == family_id) & _T.revoked_at.is_(None)
            )
            .values(revoked_at=at)
        )
        return result.rowcount

    async def revoke_identity_refresh_tokens(
        self, namespace: str, identity_id: str, *, at: datetime
    ) -> int:
        """Revoke every refresh token of an identity; how many were still unrevoked."""
        result = await self._conn.execute(
            iam_refresh_tokens.update()
            .where(
                (_T.namespace == namespace)
                & (_T.identity_id == identity_id)
                & _T.revoked_at.is_(None)
            )
            .values(revoked_at=at)
        )
        return result.rowcount

    async def delete_expired_refresh_tokens(self, namespace: str, *, before: datetime) -> int:
        """Forget refresh tokens of `namespace` that expired before `before`; how many."""
        result = await self._conn.execute(
            iam_refresh_tokens.delete().where(
                (_T.namespace == namespace) & (_T.expires_at < before)
            )
        )
        return result.rowcount

    # --- password hashes ------------------------------------------------------------------

    async def set_password_hash(
        self,
        namespace: str,
        identity_id: str,
        password_hash: str,
        *,
        at: datetime,
        expected: str | None = None,
    ) -> bool:
        """Store an identity's password hash; False if there is no such identity.

        With `expected`, only if the stored hash is still that one (a rehash after login
        never overwrites a password set meanwhile).
        """
        where = (_I.namespace == namespace) & (_I.id == identity_id)
        if expected is not None:
            where = where & (_I.password_hash == expected)
        result = await self._conn.execute(
            iam_identities.update().where(where).values(password_hash=password_hash, updated_at=at)
        )
        return result.rowcount > 0

    # --- settings -------------------------------------------------------------------------

    async def min_password_length(self, namespace: str) -> int | None:
        """The namespace's minimum password length, or None when it keeps the default."""
        value = (
            await self._conn.execute(
                sa.select(_S.min_password_length).where(_S.namespace == namespace)
            )
        ).scalar_one_or_none()
        return None if value is None else int(value)

    async def put_min_password_length(self, namespace: str, value: int, *, at: datetime) -> None:
        """Set the namespace's minimum password length (insert or update)."""
        update = (
            iam_settings.update()
            .where(_S.namespace == namespace)
            .values(min_password_length=value, updated_at=at)
        )
        if (await self._conn.execute(update)).rowcount > 0:
            return
        inserted = await execute_unless_conflict(
            self._conn,
            iam_settings.insert().values(
                namespace=namespace, min_password_length=value, updated_at=at
            ),
        )
        if not inserted:  # another writer inserted it between our update and insert
            await self._conn.execute(update)

    # --- namespace deletion ---------------------------------------------------------------

    async def purge(self, namespace: str, *, created_before: datetime) -> None:
        """Delete the credentials and settings a deleted namespace had when it was deleted."""
        for table, column in (
            (iam_api_keys, "created_at"),
            (iam_refresh_tokens, "created_at"),
            (iam_settings, "updated_at"),
        ):
            await self._conn.execute(
                table.delete().where(
                    (table.c.namespace == namespace) & (table.c[column] <= created_before)
                )
            )

"""Persistence of namespaces: the one repository that lists across namespaces."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.errors import Conflict
from obp.services.namespaces.model import Namespace
from obp.services.namespaces.tables import namespaces

_COLUMNS = (
    namespaces.c.name,
    namespaces.c.full_name,
    namespaces.c.description,
    namespaces.c.created_at,
    namespaces.c.updated_at,
)


class NamespaceRepository:
    """Namespaces in the database, as domain objects."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, namespace: Namespace) -> None:
        """Insert a new namespace; `Conflict` if the name is taken (even by a racing writer)."""
        try:
            await self._conn.execute(namespaces.insert().values(**_values(namespace)))
        except IntegrityError as exc:
            raise Conflict(f"namespace {namespace.name!r} already exists") from exc

    async def get(self, name: str, *, for_update: bool = False) -> Namespace | None:
        """The namespace called `name`, if any; `for_update` locks it until the transaction ends."""
        statement = sa.select(*_COLUMNS).where(namespaces.c.name == name)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._conn.execute(statement)).one_or_none()
        return None if row is None else Namespace(*row)

    async def update(self, namespace: Namespace) -> bool:
        """Store the changed fields of an existing namespace; whether it still existed."""
        result = await self._conn.execute(
            namespaces.update()
            .where(namespaces.c.name == namespace.name)
            .values(
                full_name=namespace.full_name,
                description=namespace.description,
                updated_at=namespace.updated_at,
            )
        )
        return result.rowcount > 0

    async def delete(self, name: str) -> bool:
        """Delete the namespace row; whether it existed."""
        result = await self._conn.execute(namespaces.delete().where(namespaces.c.name == name))
        return result.rowcount > 0

    async def search(
        self, *, query: str | None, after: str | None, limit: int
    ) -> Sequence[Namespace]:
        """Up to `limit` namespaces by name after `after`, matching `query` as a substring."""
        statement = sa.select(*_COLUMNS).order_by(namespaces.c.name).limit(limit)
        if after is not None:
            statement = statement.where(namespaces.c.name > after)
        if query:
            pattern = "%" + _escape_like(query) + "%"
            statement = statement.where(
                sa.or_(
                    namespaces.c.name.ilike(pattern, escape="\\"),
                    namespaces.c.full_name.ilike(pattern, escape="\\"),
                    namespaces.c.description.ilike(pattern, escape="\\"),
                )
            )
        rows = (await self._conn.execute(statement)).all()
        return [Namespace(*row) for row in rows]


def _values(namespace: Namespace) -> dict[str, object]:
    return {
        "name": namespace.name,
        "full_name": namespace.full_name,
        "description": namespace.description,
        "created_at": namespace.created_at,
        "updated_at": namespace.updated_at,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Persistence of policies, roles and identities with their attachments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.tables import execute_unless_conflict
from obp.services.iam.model import Identity, Policy, Ref, Role
from obp.services.iam.tables import (
    iam_identities,
    iam_identity_policies,
    iam_identity_roles,
    iam_policies,
    iam_role_policies,
    iam_roles,
    identity_from_row,
    identity_row,
    policy_from_row,
    policy_row,
    role_from_row,
    role_row,
)

_P, _R, _I = iam_policies.c, iam_roles.c, iam_identities.c


class IamRepository:
    """Policies, roles and identities; attachments may point into the global namespace."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    # --- policies -------------------------------------------------------------------------

    async def add_policy(self, policy: Policy) -> bool:
        """Insert a policy; False if its name is taken in its namespace."""
        return await execute_unless_conflict(
            self._conn, iam_policies.insert().values(**policy_row(policy))
        )

    async def policy(self, namespace: str, policy_id: str) -> Policy | None:
        """One policy of `namespace`."""
        row = (
            await self._conn.execute(
                sa.select(iam_policies).where((_P.namespace == namespace) & (_P.id == policy_id))
            )
        ).one_or_none()
        return None if row is None else policy_from_row(row)

    async def policy_by_name(self, namespace: str, name: str) -> Policy | None:
        """One policy of `namespace` by name."""
        row = (
            await self._conn.execute(
                sa.select(iam_policies).where((_P.namespace == namespace) & (_P.name == name))
            )
        ).one_or_none()
        return None if row is None else policy_from_row(row)

    async def update_policy(self, policy: Policy) -> bool:
        """Store a changed policy; False if the new name is taken."""
        return await execute_unless_conflict(
            self._conn,
            iam_policies.update()
            .where((_P.namespace == policy.namespace) & (_P.id == policy.id))
            .values(**policy_row(policy)),
        )

    async def delete_policy(self, namespace: str, policy_id: str) -> bool:
        """Delete a policy and detach it from every role and identity, in any namespace."""
        for table in (iam_role_policies, iam_identity_policies):
            await self._conn.execute(
                table.delete().where(
                    (table.c.policy_namespace == namespace) & (table.c.policy_id == policy_id)
                )
            )
        result = await self._conn.execute(
            iam_policies.delete().where((_P.namespace == namespace) & (_P.id == policy_id))
        )
        return result.rowcount > 0

    async def policies(
        self, namespace: str, *, query: str | None, after: str | None, limit: int
    ) -> Sequence[Policy]:
        """Policies of `namespace` by name, optionally those whose name contains `query`."""
        return [
            policy_from_row(row)
            for row in await self._search(iam_policies, namespace, query, after, limit)
        ]

    async def policies_by_refs(self, refs: Iterable[Ref]) -> list[Policy]:
        """The policies that exist among `refs`."""
        wanted = list(refs)
        if not wanted:
            return []
        rows = await self._conn.execute(
            sa.select(iam_policies).where(
                sa.tuple_(_P.namespace, _P.id).in_([(r.namespace, r.id) for r in wanted])
            )
        )
        return [policy_from_row(row) for row in rows]

    async def locate(self, table: sa.Table, ids: Iterable[str]) -> dict[str, str]:
        """The namespace each id lives in (ids are UUIDs, unique across namespaces)."""
        wanted = list(ids)
        if not wanted:
            return {}
        rows = await self._conn.execute(
            sa.select(table.c.id, table.c.namespace).where(table.c.id.in_(wanted))
        )
        return {row_id: ns for row_id, ns in rows}

    # --- roles ----------------------------------------------------------------------------

    async def add_role(self, role: Role) -> bool:
        """Insert a role and its policies; False if its name is taken."""
        added = await execute_unless_conflict(
            self._conn, iam_roles.insert().values(**role_row(role))
        )
        if added:
            await self._attach(
                iam_role_policies, role.namespace, "role", role.id, "policy", role.policies
            )
        return added

    async def role(self, namespace: str, role_id: str) -> Role | None:
        """One role with its policies."""
        row = (
            await self._conn.execute(
                sa.select(iam_roles).where((_R.namespace == namespace) & (_R.id == role_id))
            )
        ).one_or_none()
        if row is None:
            return None
        return role_from_row(
            row, await self._attached(iam_role_policies, namespace, "role", role_id, "policy")
        )

    async def update_role(self, role: Role) -> bool:
        """Store a changed role, replacing its policies; False if the new name is taken."""
        if not await execute_unless_conflict(
            self._conn,
            iam_roles.update()
            .where((_R.namespace == role.namespace) & (_R.id == role.id))
            .values(**role_row(role)),
        ):
            return False
        await self._replace(
            iam_role_policies, role.namespace, "role", role.id, "policy", role.policies
        )
        return True

    async def delete_role(self, namespace: str, role_id: str) -> bool:
        """Delete a role and detach it from every identity."""
        await self._conn.execute(
            iam_identity_roles.delete().where(
                (iam_identity_roles.c.role_namespace == namespace)
                & (iam_identity_roles.c.role_id == role_id)
            )
        )
        await self._conn.execute(
            iam_role_policies.delete().where(
                (iam_role_policies.c.namespace == namespace)
                & (iam_role_policies.c.role_id == role_id)
            )
        )
        result = await self._conn.execute(
            iam_roles.delete().where((_R.namespace == namespace) & (_R.id == role_id))
        )
        return result.rowcount > 0

    async def roles(
        self, namespace: str, *, query: str | None, after: str | None, limit: int
    ) -> Sequence[Role]:
        """Roles of `namespace` by name."""
        rows = await self._search(iam_roles, namespace, query, after, limit)
        return [
            role_from_row(
                row, await self._attached(iam_role_policies, namespace, "role", row.id, "policy")
            )
            for row in rows
        ]

    # --- identities -----------------------------------------------------------------------

    async def add_identity(self, identity: Identity) -> bool:
        """Insert an identity and its attachments; False if its name is taken."""
        added = await execute_unless_conflict(
            self._conn, iam_identities.insert().values(**identity_row(identity))
        )
        if added:
            await self._attach_identity(identity)
        return added

    async def identity(self, namespace: str, identity_id: str) -> Identity | None:
        """One identity with its attachments."""
        return await self._one_identity((_I.namespace == namespace) & (_I.id == identity_id))

    async def has_identities(self, namespace: str) -> bool:
        """Whether the namespace has any identity at all."""
        found = await self._conn.scalar(sa.select(_I.id).where(_I.namespace == namespace).limit(1))
        return found is not None

    async def identity_by_name(self, namespace: str, name: str) -> Identity | None:
        """One identity by login name."""
        return await self._one_identity((_I.namespace == namespace) & (_I.name == name))

    async def update_identity(self, identity: Identity) -> bool:
        """Store a changed identity, replacing its attachments; False if the new name is taken."""
        if not await execute_unless_conflict(
            self._conn,
            iam_identities.update()
            .where((_I.namespace == identity.namespace) & (_I.id == identity.id))
            .values(**identity_row(identity)),
        ):
            return False
        for table, target, refs in (
            (iam_identity_policies, "policy", identity.policies),
            (iam_identity_roles, "role", identity.roles),
        ):
            await self._replace(table, identity.namespace, "identity", identity.id, target, refs)
        return True

    async def delete_identity(self, namespace: str, identity_id: str) -> bool:
        """Delete an identity and its attachments."""
        for table in (iam_identity_policies, iam_identity_roles):
            await self._conn.execute(
                table.delete().where(
                    (table.c.namespace == namespace) & (table.c.identity_id == identity_id)
                )
            )
        result = await self._conn.execute(
            iam_identities.delete().where((_I.namespace == namespace) & (_I.id == identity_id))
        )
        return result.rowcount > 0

    async def identities(
        self, namespace: str, *, query: str | None, after: str | None, limit: int
    ) -> Sequence[Identity]:
        """Identities of `namespace` by name."""
        rows = await self._search(iam_identities, namespace, query, after, limit)
        return [await self._with_attachments(row) for row in rows]

    async def effective_policies(self, identity: Identity) -> list[Policy]:
        """Every policy an identity holds, directly or through its roles."""
        refs = set(identity.policies)
        for role_ref in identity.roles:
            refs |= set(
                await self._attached(
                    iam_role_policies, role_ref.namespace, "role", role_ref.id, "policy"
                )
            )
        return await self.policies_by_refs(refs)

    async def identities_holding(self, refs: Iterable[Ref]) -> list[Ref]:
        """Identities that hold any of these policies or roles (whose access a change alters)."""
        found: set[Ref] = set()
        for ref in refs:
            for table, column in (
                (iam_identity_policies, "policy"),
                (iam_identity_roles, "role"),
            ):
                rows = await self._conn.execute(
                    sa.select(table.c.namespace, table.c.identity_id).where(
                        (table.c[f"{column}_namespace"] == ref.namespace)
                        & (table.c[f"{column}_id"] == ref.id)
                    )
                )
                found |= {Ref(ns, identity_id) for ns, identity_id in rows}
        return sorted(found, key=lambda r: (r.namespace, r.id))

    async def purge(self, namespace: str, *, created_before: datetime) -> None:
        """Delete what a deleted namespace had when it was deleted (a namespace created again
        under its name keeps its own), then every attachment left pointing at nothing."""
        for table in (iam_identities, iam_roles, iam_policies):
            await self._conn.execute(
                table.delete().where(
                    (table.c.namespace == namespace) & (table.c.created_at <= created_before)
                )
            )
        for table, owner, owners in (
            (iam_identity_policies, "identity_id", iam_identities),
            (iam_identity_roles, "identity_id", iam_identities),
            (iam_role_policies, "role_id", iam_roles),
        ):
            alive = sa.select(owners.c.id).where(owners.c.namespace == namespace)
            await self._conn.execute(
                table.delete().where(
                    (table.c.namespace == namespace) & table.c[owner].not_in(alive)
                )
            )
        for table, target, targets in (
            (iam_identity_policies, "policy", iam_policies),
            (iam_role_policies, "policy", iam_policies),
            (iam_identity_roles, "role", iam_roles),
        ):
            alive = sa.select(targets.c.id).where(targets.c.namespace == namespace)
            await self._conn.execute(
                table.delete().where(
                    (table.c[f"{target}_namespace"] == namespace)
                    & table.c[f"{target}_id"].not_in(alive)
                )
            )

    # --- helpers --------------------------------------------------------------------------

    async def _search(
        self, table: sa.Table, namespace: str, query: str | None, after: str | None, limit: int
    ) -> Sequence[Any]:
        statement = (
            sa.select(table)
            .where(table.c.namespace == namespace)
            .order_by(table.c.name)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(table.c.name > after)
        if query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(table.c.name.ilike(f"%{escaped}%", escape="\\"))
        return (await self._conn.execute(statement)).all()

    async def _one_identity(self, where: sa.ColumnElement[bool]) -> Identity | None:
        row = (await self._conn.execute(sa.select(iam_identities).where(where))).one_or_none()
        return None if row is None else await self._with_attachments(row)

    async def _with_attachments(self, row: Any) -> Identity:
        policies = await self._attached(
            iam_identity_policies, row.namespace, "identity", row.id, "policy"
        )
        roles = await self._attached(iam_identity_roles, row.namespace, "identity", row.id, "role")
        return identity_from_row(row, policies, roles)

    async def _attach_identity(self, identity: Identity) -> None:
        await self._attach(
            iam_identity_policies,
            identity.namespace,
            "identity",
            identity.id,
            "policy",
            identity.policies,
        )
        await self._attach(
            iam_identity_roles, identity.namespace, "identity", identity.id, "role", identity.roles
        )

    async def _attached(
        self, table: sa.Table, namespace: str, owner: str, owner_id: str, target: str
    ) -> tuple[Ref, ...]:
        rows = await self._conn.execute(
            sa.select(table.c[f"{target}_namespace"], table.c[f"{target}_id"])
            .where((table.c.namespace == namespace) & (table.c[f"{owner}_id"] == owner_id))
            .order_by(table.c[f"{target}_namespace"], table.c[f"{target}_id"])
        )
        return tuple(Ref(ns, target_id) for ns, target_id in rows)

    async def _attach(
        self,
        table: sa.Table,
        namespace: str,
        owner: str,
        owner_id: str,
        target: str,
        refs: Iterable[Ref],
    ) -> None:
        values = [
            {
                "namespace": namespace,
                f"{owner}_id": owner_id,
                f"{target}_namespace": ref.namespace,
                f"{target}_id": ref.id,
            }
            for ref in dict.fromkeys(refs)
        ]
        if values:
            await self._conn.execute(table.insert(), values)

    async def _replace(
        self,
        table: sa.Table,
        namespace: str,
        owner: str,
        owner_id: str,
        target: str,
        refs: Iterable[Ref],
    ) -> None:
        await self._conn.execute(
            table.delete().where(
                (table.c.namespace == namespace) & (table.c[f"{owner}_id"] == owner_id)
            )
        )
        await self._attach(table, namespace, owner, owner_id, target, refs)

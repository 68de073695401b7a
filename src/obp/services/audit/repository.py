"""Persistence of audit records, always per namespace, newest first."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.services.audit.model import AuditRecord
from obp.services.audit.tables import audit_events

_A = audit_events.c


class AuditRepository:
    """Audit records of one namespace at a time."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, records: Sequence[AuditRecord]) -> None:
        """Append records."""
        if records:
            await self._conn.execute(
                audit_events.insert(),
                [
                    {
                        "namespace": r.namespace,
                        "id": r.id,
                        "at": r.at,
                        "actor": r.actor,
                        "action": r.action,
                        "resource": r.resource,
                        "outcome": r.outcome,
                        "detail": r.detail,
                    }
                    for r in records
                ],
            )

    async def newest(self, namespace: str, *, before: str | None, limit: int) -> list[AuditRecord]:
        """Records of `namespace`, newest first (ids are UUIDv7, so they sort by time)."""
        statement = (
            sa.select(audit_events)
            .where(_A.namespace == namespace)
            .order_by(_A.id.desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(_A.id < before)
        rows = (await self._conn.execute(statement)).all()
        return [
            AuditRecord(
                namespace=row.namespace,
                id=row.id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                resource=row.resource,
                outcome=row.outcome,
                detail=dict(row.detail),
            )
            for row in rows
        ]

    async def purge(self, namespace: str) -> None:
        """Delete a deleted namespace's trail."""
        await self._conn.execute(audit_events.delete().where(_A.namespace == namespace))

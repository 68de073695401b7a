"""The audit trail: recorded off the request path, read by those allowed to."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.events import Event
from obp.kernel.ids import new_id
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import UnitOfWorkFactory
from obp.services.audit.model import AuditRecord
from obp.services.audit.repository import AuditRepository

log = structlog.get_logger("obp.audit")

# Records being written at once; beyond this they are logged only (and counted in `dropped`).
MAX_PENDING = 1000


class AuditService:
    """Writes audit records in the background and lists them per namespace."""

    def __init__(self, *, unit_of_work: UnitOfWorkFactory) -> None:
        self._uow = unit_of_work
        self._access: Access | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def bind(self, access: Access) -> None:
        """The access check for reading the trail (set once IAM exists: IAM records here too)."""
        self._access = access

    def record(
        self,
        *,
        namespace: str,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record in the background: a refusal may happen while its caller holds a transaction."""
        item = AuditRecord(
            namespace=namespace,
            id=new_id(),
            at=utcnow(),
            actor=actor,
            action=action,
            resource=resource,
            outcome=outcome,
            detail=dict(detail or {}),
        )
        log.warning("audit", **{k: v for k, v in vars_of(item).items() if k != "detail"})
        if len(self._pending) >= MAX_PENDING:
            # A flood (e.g. of failed logins) must not grow memory or queue writes without end:
            # past the bound, records reach the log above but not the table.
            self.dropped += 1
            return
        task = asyncio.create_task(self._write(item))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def list(
        self,
        *,
        principal: Principal,
        namespace: str,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[AuditRecord]:
        """The namespace's trail, newest first."""
        assert self._access is not None
        await self._access.require(
            principal, namespace=namespace, action="audit.list", resource="audit:*"
        )
        size, before = validate_limit(limit), decode_cursor(cursor)
        async with self._uow(write=False) as uow:
            found = await AuditRepository(uow.connection).newest(
                namespace, before=before, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda r: r.id)

    async def flush(self) -> None:
        """Wait for records still being written (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def purge_namespace(self, event: Event) -> None:
        """Delete a deleted namespace's trail."""
        async with self._uow() as uow:
            await AuditRepository(uow.connection).purge(event.namespace)
            await uow.commit()

    async def _write(self, item: AuditRecord) -> None:
        try:
            async with self._uow() as uow:
                await AuditRepository(uow.connection).add([item])
                await uow.commit()
        except Exception:
            log.exception("audit record not stored", namespace=item.namespace, action=item.action)


def vars_of(item: AuditRecord) -> dict[str, Any]:
    """The record as plain fields (for the log line)."""
    return {
        "namespace": item.namespace,
        "actor": item.actor,
        "action": item.action,
        "resource": item.resource,
        "outcome": item.outcome,
        "detail": item.detail,
    }

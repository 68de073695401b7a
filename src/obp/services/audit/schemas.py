"""Audit response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from obp.services.audit.model import AuditRecord


class AuditRead(BaseModel):
    """One audit record."""

    id: str
    at: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> AuditRead:
        """The public view of a record."""
        return cls(
            id=record.id,
            at=record.at,
            actor=record.actor,
            action=record.action,
            resource=record.resource,
            outcome=record.outcome,
            detail=record.detail,
        )


class AuditPage(BaseModel):
    """One page of the trail, newest first."""

    items: list[AuditRead]
    next_cursor: str | None

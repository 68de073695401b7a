"""Audit HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from obp.http.deps import PlatformDep, PrincipalDep
from obp.http.problems import problem_responses
from obp.kernel.paging import MAX_LIMIT
from obp.services.audit.schemas import AuditPage, AuditRead

router = APIRouter(prefix="/api/v1/namespaces/{ns}/audit", tags=["audit"])


@router.get("", responses=problem_responses(403, 422), summary="The namespace's audit trail")
async def list_audit(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditPage:
    """Refusals and failed logins, newest first."""
    page = await platform.audit.list(principal=principal, namespace=ns, cursor=cursor, limit=limit)
    return AuditPage(items=[AuditRead.of(r) for r in page.items], next_cursor=page.next_cursor)

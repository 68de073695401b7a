"""Namespace HTTP routes: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from obp.http.deps import PlatformDep, PrincipalDep, require_json
from obp.http.problems import problem_responses
from obp.kernel.paging import MAX_LIMIT
from obp.services.namespaces.schemas import (
    NamespaceCreate,
    NamespacePage,
    NamespaceRead,
    NamespaceUpdate,
)

router = APIRouter(prefix="/api/v1/namespaces", tags=["namespaces"])


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require_json)],
    responses=problem_responses(409, 413, 415, 422),
    summary="Create a namespace",
)
async def create_namespace(
    body: NamespaceCreate, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> NamespaceRead:
    """Create a tenant; 409 if the name exists, 422 if it is invalid or reserved."""
    namespace = await platform.namespaces.create(
        principal=principal,
        name=body.name,
        full_name=body.full_name,
        description=body.description,
    )
    response.headers["Location"] = f"{router.prefix}/{namespace.name}"
    return NamespaceRead.of(namespace)


@router.get(
    "",
    responses=problem_responses(422),
    summary="List or search namespaces",
)
async def list_namespaces(
    platform: PlatformDep,
    principal: PrincipalDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Substring of name or texts")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> NamespacePage:
    """Namespaces in name order, one page at a time."""
    page = await platform.namespaces.search(
        principal=principal, query=q, cursor=cursor, limit=limit
    )
    return NamespacePage(
        items=[NamespaceRead.of(n) for n in page.items], next_cursor=page.next_cursor
    )


@router.get("/{ns}", responses=problem_responses(404), summary="Get a namespace")
async def get_namespace(ns: str, platform: PlatformDep, principal: PrincipalDep) -> NamespaceRead:
    """One namespace by name, with what it stores (files, kv: counts and bytes)."""
    namespace, usage = await platform.namespaces.get_with_usage(principal=principal, name=ns)
    return NamespaceRead.of(namespace, usage)


@router.patch(
    "/{ns}",
    dependencies=[Depends(require_json)],
    responses=problem_responses(404, 413, 415, 422),
    summary="Change a namespace's display name or description",
)
async def update_namespace(
    ns: str, body: NamespaceUpdate, platform: PlatformDep, principal: PrincipalDep
) -> NamespaceRead:
    """Change full_name and/or description; the name itself never changes."""
    namespace = await platform.namespaces.update(
        principal=principal, name=ns, full_name=body.full_name, description=body.description
    )
    return NamespaceRead.of(namespace)


@router.delete("/{ns}", status_code=204, summary="Delete a namespace and all its data")
async def delete_namespace(ns: str, platform: PlatformDep, principal: PrincipalDep) -> Response:
    """Idempotent: 204 whether or not it existed; every context purges its data on the event."""
    await platform.namespaces.delete(principal=principal, name=ns)
    return Response(status_code=204)

"""Secret HTTP routes under a namespace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from obp.http.deps import PlatformDep, PrincipalDep, require_json
from obp.http.problems import problem_responses
from obp.kernel.paging import MAX_LIMIT
from obp.services.secrets.schemas import SecretMetadata, SecretPage, SecretRead, SecretWrite

router = APIRouter(prefix="/api/v1/namespaces/{ns}/secrets", tags=["secrets"])


@router.put(
    "/{name:path}",
    dependencies=[Depends(require_json)],
    responses={201: {"model": SecretMetadata}, **problem_responses(404, 413, 415, 422, 503)},
    summary="Write a new version of a secret",
)
async def put_secret(
    ns: str,
    name: str,
    body: SecretWrite,
    response: Response,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> SecretMetadata:
    """201 for a new secret, 200 for a new version of an existing one; never echoes the value."""
    secret, created = await platform.secrets.put(
        principal=principal,
        namespace=ns,
        name=name,
        value=body.value,
        description=body.description,
    )
    response.status_code = 201 if created else 200
    return SecretMetadata.of(secret)


@router.get(
    "/{name:path}",
    responses=problem_responses(404, 422, 503),
    summary="Read a secret and its value",
)
async def get_secret(
    ns: str,
    name: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, description="An older version")] = None,
) -> SecretRead:
    """The newest version, or `?version=N`."""
    secret = await platform.secrets.get(
        principal=principal, namespace=ns, name=name, version=version
    )
    return SecretRead.with_value(secret)


@router.get("", responses=problem_responses(404, 422), summary="List secrets (never values)")
async def list_secrets(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    prefix: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> SecretPage:
    """Names and metadata in name order, one page at a time."""
    page = await platform.secrets.list(
        principal=principal, namespace=ns, prefix=prefix, cursor=cursor, limit=limit
    )
    return SecretPage(
        items=[SecretMetadata.of(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.delete(
    "/{name:path}", status_code=204, responses=problem_responses(422), summary="Delete a secret"
)
async def delete_secret(
    ns: str, name: str, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    """Delete every version; 204 whether or not it existed."""
    await platform.secrets.delete(principal=principal, namespace=ns, name=name)
    return Response(status_code=204)

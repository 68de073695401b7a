"""IAM HTTP routes: identities of a namespace (or of `global`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from obp.http.deps import PlatformDep, PrincipalDep
from obp.http.problems import problem_responses
from obp.services.iam.router import JSON_BODY, Cursor, Limit, NameQuery
from obp.services.iam.schemas import IdentityCreate, IdentityPage, IdentityRead, IdentityUpdate

router = APIRouter(prefix="/api/v1/namespaces/{ns}/iam/identities", tags=["iam"])


@router.post(
    "",
    status_code=201,
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Create an identity",
)
async def create_identity(
    ns: str, body: IdentityCreate, platform: PlatformDep, principal: PrincipalDep
) -> IdentityRead:
    """A login with policies and roles of this namespace or of global."""
    identity = await platform.identities.create_identity(
        principal=principal, namespace=ns, **body.model_dump()
    )
    return IdentityRead.of(identity)


@router.get("", responses=problem_responses(422), summary="List or search identities")
async def list_identities(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    q: NameQuery = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> IdentityPage:
    """Identities by name."""
    page = await platform.identities.list_identities(
        principal=principal, namespace=ns, query=q, cursor=cursor, limit=limit
    )
    return IdentityPage(
        items=[IdentityRead.of(i) for i in page.items], next_cursor=page.next_cursor
    )


@router.get("/{identity_id}", responses=problem_responses(404), summary="Get an identity")
async def get_identity(
    ns: str, identity_id: str, platform: PlatformDep, principal: PrincipalDep
) -> IdentityRead:
    """One identity."""
    return IdentityRead.of(
        await platform.identities.get_identity(
            principal=principal, namespace=ns, identity_id=identity_id
        )
    )


@router.patch(
    "/{identity_id}",
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Change an identity",
)
async def update_identity(
    ns: str, identity_id: str, body: IdentityUpdate, platform: PlatformDep, principal: PrincipalDep
) -> IdentityRead:
    """Change name, metadata, activity, policies or roles."""
    identity = await platform.identities.update_identity(
        principal=principal, namespace=ns, identity_id=identity_id, **body.model_dump()
    )
    return IdentityRead.of(identity)


@router.delete("/{identity_id}", status_code=204, summary="Delete an identity")
async def delete_identity(
    ns: str, identity_id: str, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    """Idempotent."""
    await platform.identities.delete_identity(
        principal=principal, namespace=ns, identity_id=identity_id
    )
    return Response(status_code=204)


@router.post("/{identity_id}/block", responses=problem_responses(404), summary="Block an identity")
async def block_identity(
    ns: str, identity_id: str, platform: PlatformDep, principal: PrincipalDep
) -> IdentityRead:
    """Refuse the identity's next request, whatever tokens it holds."""
    identity = await platform.identities.set_blocked(
        principal=principal, namespace=ns, identity_id=identity_id, blocked=True
    )
    return IdentityRead.of(identity)


@router.post(
    "/{identity_id}/unblock", responses=problem_responses(404), summary="Unblock an identity"
)
async def unblock_identity(
    ns: str, identity_id: str, platform: PlatformDep, principal: PrincipalDep
) -> IdentityRead:
    """Let the identity in again."""
    identity = await platform.identities.set_blocked(
        principal=principal, namespace=ns, identity_id=identity_id, blocked=False
    )
    return IdentityRead.of(identity)

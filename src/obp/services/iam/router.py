"""IAM HTTP routes: policies and roles of a namespace (or of `global`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from obp.http.deps import PlatformDep, PrincipalDep, require_json
from obp.http.problems import problem_responses
from obp.kernel.paging import MAX_LIMIT
from obp.services.iam.schemas import (
    AuthzAnswers,
    AuthzCheck,
    AuthzDecision,
    PolicyCreate,
    PolicyPage,
    PolicyRead,
    PolicyUpdate,
    RoleCreate,
    RolePage,
    RoleRead,
    RoleUpdate,
)

router = APIRouter(prefix="/api/v1/namespaces/{ns}/iam", tags=["iam"])

NameQuery = Annotated[str | None, Query(max_length=200, description="Part of the name")]
Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]
JSON_BODY = [Depends(require_json)]


@router.post(
    "/policies",
    status_code=201,
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Create a policy",
)
async def create_policy(
    ns: str, body: PolicyCreate, platform: PlatformDep, principal: PrincipalDep
) -> PolicyRead:
    """Grant actions on resources in this namespace."""
    policy = await platform.iam.create_policy(
        principal=principal, namespace=ns, **body.model_dump()
    )
    return PolicyRead.of(policy)


@router.get("/policies", responses=problem_responses(422), summary="List or search policies")
async def list_policies(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    q: NameQuery = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> PolicyPage:
    """Policies by name."""
    page = await platform.iam.list_policies(
        principal=principal, namespace=ns, query=q, cursor=cursor, limit=limit
    )
    return PolicyPage(items=[PolicyRead.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/policies/{policy_id}", responses=problem_responses(404), summary="Get a policy")
async def get_policy(
    ns: str, policy_id: str, platform: PlatformDep, principal: PrincipalDep
) -> PolicyRead:
    """One policy."""
    return PolicyRead.of(
        await platform.iam.get_policy(principal=principal, namespace=ns, policy_id=policy_id)
    )


@router.patch(
    "/policies/{policy_id}",
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Change a policy at runtime",
)
async def update_policy(
    ns: str, policy_id: str, body: PolicyUpdate, platform: PlatformDep, principal: PrincipalDep
) -> PolicyRead:
    """Change name, description, resources or actions; holders are re-evaluated at once."""
    policy = await platform.iam.update_policy(
        principal=principal, namespace=ns, policy_id=policy_id, **body.model_dump()
    )
    return PolicyRead.of(policy)


@router.delete(
    "/policies/{policy_id}",
    status_code=204,
    responses=problem_responses(409),
    summary="Delete a policy and detach it everywhere",
)
async def delete_policy(
    ns: str, policy_id: str, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    """Idempotent; built-in policies answer 409."""
    await platform.iam.delete_policy(principal=principal, namespace=ns, policy_id=policy_id)
    return Response(status_code=204)


@router.post(
    "/roles",
    status_code=201,
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Create a role",
)
async def create_role(
    ns: str, body: RoleCreate, platform: PlatformDep, principal: PrincipalDep
) -> RoleRead:
    """A named set of policies of this namespace or of global."""
    role = await platform.iam.create_role(principal=principal, namespace=ns, **body.model_dump())
    return RoleRead.of(role)


@router.get("/roles", responses=problem_responses(422), summary="List or search roles")
async def list_roles(
    ns: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    q: NameQuery = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> RolePage:
    """Roles by name."""
    page = await platform.iam.list_roles(
        principal=principal, namespace=ns, query=q, cursor=cursor, limit=limit
    )
    return RolePage(items=[RoleRead.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/roles/{role_id}", responses=problem_responses(404), summary="Get a role")
async def get_role(
    ns: str, role_id: str, platform: PlatformDep, principal: PrincipalDep
) -> RoleRead:
    """One role."""
    return RoleRead.of(
        await platform.iam.get_role(principal=principal, namespace=ns, role_id=role_id)
    )


@router.patch(
    "/roles/{role_id}",
    dependencies=JSON_BODY,
    responses=problem_responses(404, 409, 415, 422),
    summary="Change a role",
)
async def update_role(
    ns: str, role_id: str, body: RoleUpdate, platform: PlatformDep, principal: PrincipalDep
) -> RoleRead:
    """Rename a role or replace its policies."""
    role = await platform.iam.update_role(
        principal=principal, namespace=ns, role_id=role_id, **body.model_dump()
    )
    return RoleRead.of(role)


@router.delete("/roles/{role_id}", status_code=204, summary="Delete a role")
async def delete_role(
    ns: str, role_id: str, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    """Idempotent; the role is detached from every identity."""
    await platform.iam.delete_role(principal=principal, namespace=ns, role_id=role_id)
    return Response(status_code=204)


@router.post(
    "/authz/check",
    dependencies=JSON_BODY,
    responses=problem_responses(403, 415, 422),
    summary="Ask for a batch of authorization decisions",
)
async def check_authorization(
    ns: str, body: AuthzCheck, platform: PlatformDep, principal: PrincipalDep
) -> AuthzAnswers:
    """For the caller's token, or for another identity when the caller may `iam.authz.check`."""
    decisions = await platform.access.check(
        principal=principal,
        namespace=ns,
        items=[(q.namespace, q.action, q.resource) for q in body.checks],
        identity_id=body.identity,
    )
    return AuthzAnswers(
        decisions=[
            AuthzDecision(
                namespace=d.namespace, action=d.action, resource=d.resource, allowed=d.allowed
            )
            for d in decisions
        ]
    )

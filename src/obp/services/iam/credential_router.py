"""IAM HTTP routes administering credentials: the passwords and API keys of a namespace's
(or of `global`'s) identities, and the namespace's password rules. Each takes an access token.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from obp.http.deps import PrincipalDep
from obp.http.problems import problem_responses
from obp.services.iam.auth_deps import NO_STORE, AuthDep
from obp.services.iam.router import JSON_BODY, Cursor, Limit
from obp.services.iam.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyRead,
    PasswordRulesRead,
    PasswordRulesUpdate,
    PasswordSet,
)

router = APIRouter(prefix="/api/v1/namespaces/{ns}", tags=["iam"])


@router.put(
    "/iam/identities/{identity_id}/password",
    status_code=204,
    dependencies=JSON_BODY,
    responses=problem_responses(401, 403, 404, 415, 422),
    summary="Set an identity's password",
)
async def set_password(
    ns: str, identity_id: str, body: PasswordSet, auth: AuthDep, principal: PrincipalDep
) -> Response:
    """Per the namespace's password rules; signs the identity out of every session
    (its refresh tokens are revoked)."""
    await auth.set_password(
        principal=principal, namespace=ns, identity_id=identity_id, password=body.password
    )
    return Response(status_code=204)


@router.post(
    "/iam/identities/{identity_id}/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    dependencies=JSON_BODY,
    responses=problem_responses(401, 403, 404, 415, 422),
    summary="Create an API key",
)
async def create_api_key(
    ns: str, identity_id: str, body: ApiKeyCreate, auth: AuthDep, principal: PrincipalDep
) -> JSONResponse:
    """The secret is in this response only: keep it. Use `id` as `client_id` and `secret`
    as `client_secret` with `grant_type=client_credentials`."""
    created = await auth.create_api_key(
        principal=principal, namespace=ns, identity_id=identity_id, description=body.description
    )
    payload = ApiKeyCreated(
        id=created.key_id,
        identity_id=identity_id,
        description=body.description,
        created_at=created.created_at,
        secret=created.secret,
    )
    return JSONResponse(payload.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get(
    "/iam/identities/{identity_id}/api-keys",
    responses=problem_responses(401, 403, 404, 422),
    summary="List an identity's API keys",
)
async def list_api_keys(
    ns: str,
    identity_id: str,
    auth: AuthDep,
    principal: PrincipalDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ApiKeyPage:
    """Unrevoked keys, never their secrets."""
    page = await auth.list_api_keys(
        principal=principal, namespace=ns, identity_id=identity_id, cursor=cursor, limit=limit
    )
    return ApiKeyPage(
        items=[
            ApiKeyRead(
                id=key.id,
                identity_id=key.identity_id,
                description=key.description,
                created_at=key.created_at,
            )
            for key in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.delete(
    "/iam/identities/{identity_id}/api-keys/{key_id}",
    status_code=204,
    responses=problem_responses(401, 403),
    summary="Revoke an API key",
)
async def revoke_api_key(
    ns: str, identity_id: str, key_id: str, auth: AuthDep, principal: PrincipalDep
) -> Response:
    """Idempotent. Access tokens it obtained stay valid until they expire."""
    await auth.revoke_api_key(
        principal=principal, namespace=ns, identity_id=identity_id, key_id=key_id
    )
    return Response(status_code=204)


@router.get(
    "/iam/settings",
    responses=problem_responses(401, 403, 404),
    summary="Get the password rules",
)
async def get_settings(ns: str, auth: AuthDep, principal: PrincipalDep) -> PasswordRulesRead:
    """The namespace's password rules (defaults until set)."""
    rules = await auth.get_password_rules(principal=principal, namespace=ns)
    return PasswordRulesRead(
        min_password_length=rules.min_length, max_password_length=rules.max_length
    )


@router.put(
    "/iam/settings",
    dependencies=JSON_BODY,
    responses=problem_responses(401, 403, 404, 415, 422),
    summary="Change the password rules",
)
async def put_settings(
    ns: str, body: PasswordRulesUpdate, auth: AuthDep, principal: PrincipalDep
) -> PasswordRulesRead:
    """They apply to passwords set from now on."""
    rules = await auth.put_password_rules(
        principal=principal, namespace=ns, min_length=body.min_password_length
    )
    return PasswordRulesRead(
        min_password_length=rules.min_length, max_password_length=rules.max_length
    )

"""IAM HTTP routes of OAuth2: the token and revocation endpoints and the discovery documents
of a namespace (or of `global`).

They are public: they take no access token. Their errors are problem+json with the RFC 6749
`error` code as an extra member, so OAuth2 client libraries understand them too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from obp.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    ProblemField,
    problem_responses,
    problem_type,
)
from obp.kernel.errors import Unauthorized, UnsupportedMediaType
from obp.services.iam.auth import GRANT_TYPES, AuthService, Throttled, TokenPair
from obp.services.iam.auth_deps import NO_STORE, AuthDep
from obp.services.iam.schemas import RevocationRequest, TokenRequest, TokenResponse

oauth_router = APIRouter(prefix="/api/v1/namespaces/{ns}", tags=["iam"])

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# Verifiers refetch at once on an unknown kid; this only bounds how stale a copy may get.
JWKS_CACHE = {"Cache-Control": "public, max-age=60"}


def _form_or_json(model: type[TokenRequest] | type[RevocationRequest]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                FORM_MEDIA_TYPE: {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


class _OAuthError(Exception):
    """An RFC 6749 error response to send as problem+json."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        field: str | None = None,
        msg: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.msg = msg or detail
        self.headers = headers or {}

    def response(self, request: Request) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id")
        body = Problem(
            type=problem_type(self.status),
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            errors=(
                [ProblemField(loc=["body", self.field], msg=self.msg)]
                if self.field is not None
                else []
            ),
            request_id=request_id if isinstance(request_id, str) else None,
        ).model_dump(mode="json")
        body["error"] = self.error
        body["error_description"] = self.detail
        return JSONResponse(
            body,
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers={**NO_STORE, **self.headers},
        )


def _invalid_request(field: str, msg: str) -> _OAuthError:
    return _OAuthError(400, "invalid_request", f"{field}: {msg}", field=field, msg=msg)


async def _parameters(request: Request) -> dict[str, str]:
    """The body's parameters, from a form (RFC 6749) or a JSON object; each at most once."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    found: dict[str, str] = {}
    if media_type == FORM_MEDIA_TYPE:
        form = await request.form()
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise _invalid_request(key, "must be text, not a file")
            if key in found:
                raise _invalid_request(key, "must be given at most once")
            found[key] = value
        return found
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            data = await request.json()
        except ValueError:
            raise _OAuthError(
                400, "invalid_request", "the body is not valid JSON (UTF-8)"
            ) from None
        if not isinstance(data, dict):
            raise _OAuthError(400, "invalid_request", "the body must be a JSON object")
        for key, value in data.items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise _invalid_request(key, "must be a string")
            found[key] = value
        return found
    raise UnsupportedMediaType(
        f"the body must be sent as Content-Type: {FORM_MEDIA_TYPE} or application/json, "
        f"not {media_type or 'none'!r}"
    )


def _required(parameters: dict[str, str], field: str, grant_type: str) -> str:
    value = parameters.get(field)
    if not value:
        raise _invalid_request(field, f"is required for grant_type={grant_type}")
    return value


def _basic_credentials(request: Request, ns: str) -> tuple[str, str] | None:
    """client_id and client_secret from HTTP Basic authentication (RFC 6749 section 2.3.1)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise _OAuthError(
            401,
            "invalid_client",
            "the Basic authorization header is not base64 of client_id:client_secret",
            headers={"WWW-Authenticate": f'Basic realm="{ns}"'},
        )
    return unquote_plus(client_id), unquote_plus(client_secret)


def _token_response(pair: TokenPair) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }
    if pair.refresh_token is not None:
        body["refresh_token"] = pair.refresh_token
    return JSONResponse(body, headers=NO_STORE)


async def _grant(request: Request, ns: str, auth: AuthService) -> TokenPair:
    parameters = await _parameters(request)
    grant_type = parameters.get("grant_type")
    accepted = ", ".join(GRANT_TYPES)
    if not grant_type:
        raise _invalid_request("grant_type", f"is required; one of {accepted}")
    if grant_type == "password":
        username = _required(parameters, "username", grant_type)
        password = _required(parameters, "password", grant_type)
        return await _answer(
            auth.password_grant(namespace=ns, username=username, password=password)
        )
    if grant_type == "refresh_token":
        token = _required(parameters, "refresh_token", grant_type)
        return await _answer(auth.refresh_grant(namespace=ns, refresh_token=token))
    if grant_type == "client_credentials":
        basic = _basic_credentials(request, ns)
        if basic is not None:
            if "client_secret" in parameters:
                raise _invalid_request(
                    "client_secret",
                    "must not be sent both in the body and as Basic authentication",
                )
            client_id, client_secret = basic
        else:
            client_id = _required(parameters, "client_id", grant_type)
            client_secret = _required(parameters, "client_secret", grant_type)
        return await _answer(
            auth.client_credentials_grant(
                namespace=ns, client_id=client_id, client_secret=client_secret
            ),
            error="invalid_client",
            challenge=f'Basic realm="{ns}"' if basic is not None else None,
        )
    raise _OAuthError(
        400,
        "unsupported_grant_type",
        f"grant_type: {grant_type[:64]!r} is not supported; use one of {accepted}",
        field="grant_type",
        msg=f"must be one of {accepted}",
    )


async def _answer(
    pending: Awaitable[TokenPair], *, error: str = "invalid_grant", challenge: str | None = None
) -> TokenPair:
    try:
        return await pending
    except Throttled as exc:
        raise _OAuthError(
            429,
            "slow_down",
            exc.detail,
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except Unauthorized as exc:
        raise _OAuthError(
            401,
            error,
            exc.detail,
            headers={"WWW-Authenticate": challenge} if challenge else None,
        ) from None


@oauth_router.post(
    "/iam/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=problem_responses(400, 401, 415, 429),
    openapi_extra=_form_or_json(TokenRequest),
    summary="Get tokens (OAuth2 token endpoint)",
)
async def token(ns: str, request: Request, auth: AuthDep) -> Response:
    """`grant_type=password`, `refresh_token` or `client_credentials` (an API key), as
    `application/x-www-form-urlencoded` or JSON. Answers RFC 6749 JSON, never cached."""
    try:
        return _token_response(await _grant(request, ns, auth))
    except _OAuthError as exc:
        return exc.response(request)


@oauth_router.post(
    "/iam/token/revoke",
    status_code=200,
    responses=problem_responses(400, 415),
    openapi_extra=_form_or_json(RevocationRequest),
    summary="Revoke a refresh token (RFC 7009)",
)
async def revoke_token(ns: str, request: Request, auth: AuthDep) -> Response:
    """Revokes the refresh token and every token rotated from the same login. Answers 200
    for unknown tokens too."""
    try:
        parameters = await _parameters(request)
        token = parameters.get("token")
        if not token:
            raise _invalid_request("token", "is required")
    except _OAuthError as exc:
        return exc.response(request)
    await auth.revoke(namespace=ns, token=token)
    return Response(status_code=200, headers=NO_STORE)


@oauth_router.get(
    "/.well-known/jwks.json",
    responses=problem_responses(404),
    summary="The namespace's public signing keys (JWK set)",
)
async def jwks(ns: str, auth: AuthDep) -> JSONResponse:
    """Verify access tokens of this namespace with these keys (`kid` names the key)."""
    return JSONResponse(await auth.jwks(namespace=ns), headers=JWKS_CACHE)


@oauth_router.get(
    "/.well-known/openid-configuration",
    responses=problem_responses(404),
    summary="The namespace's OpenID Provider metadata",
)
async def openid_configuration(ns: str, auth: AuthDep) -> JSONResponse:
    """Issuer, endpoints and algorithms of this namespace's tokens."""
    return JSONResponse(auth.openid_configuration(namespace=ns), headers=JWKS_CACHE)

"""FastAPI dependencies shared by every router: the platform, the caller, body checks."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from obp.bootstrap import Platform
from obp.kernel.auth import Principal
from obp.kernel.errors import Unauthorized, UnsupportedMediaType


def get_platform(request: Request) -> Platform:
    """The platform this app serves."""
    return cast(Platform, request.app.state.platform)


async def get_principal(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <access token>`; 401 without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send Authorization: Bearer <access token>; get one from "
            "POST /api/v1/namespaces/{ns}/iam/token"
        )
    return await get_platform(request).access.authenticate(token.strip())


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415, before they are parsed."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be sent as Content-Type: application/json, not {media_type or 'none'!r}"
        )


PlatformDep = Annotated[Platform, Depends(get_platform)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]

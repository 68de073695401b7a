"""What the IAM authentication routes share: the service dependency and cache headers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from obp.http.deps import PlatformDep
from obp.services.iam.auth import AuthService

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def get_auth(platform: PlatformDep) -> AuthService:
    """The platform's authentication service."""
    return platform.auth


AuthDep = Annotated[AuthService, Depends(get_auth)]

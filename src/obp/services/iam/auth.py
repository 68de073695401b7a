"""Authentication of a namespace (or of global), in one service: the OAuth2 grants and token
revocation (`grants`), the administration of passwords, API keys and password rules
(`credentials_admin`) and the discovery documents (`discovery`). `AuthService` builds those
three from one set of dependencies and hands each call to the one that owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.paging import Page
from obp.kernel.ports import AuditTrail, UnitOfWorkFactory
from obp.services.iam.credentials import ApiKey
from obp.services.iam.credentials_admin import (
    MIN_PASSWORD_LENGTH_FLOOR,
    SETTINGS_RESOURCE,
    CreatedApiKey,
    CredentialAdmin,
    identity_resource,
)
from obp.services.iam.discovery import Discovery
from obp.services.iam.grants import (
    CLIENT_FAILED,
    DEFAULT_REFRESH_LIFETIME,
    GRANT_TYPES,
    LOGIN_FAILED,
    MAX_PRESENTED_PASSWORD,
    REFRESH_FAILED,
    TokenGrants,
    TokenPair,
)
from obp.services.iam.identities import IdentityService
from obp.services.iam.login_guard import Throttled
from obp.services.iam.passwords import PasswordHasher, PasswordRules
from obp.services.iam.throttle import LoginThrottle
from obp.services.iam.tokens import KeySource, TokenIssuer, TokenSettings
from obp.services.namespaces import NamespaceService

__all__ = [
    "CLIENT_FAILED",
    "DEFAULT_REFRESH_LIFETIME",
    "GRANT_TYPES",
    "LOGIN_FAILED",
    "MAX_PRESENTED_PASSWORD",
    "MIN_PASSWORD_LENGTH_FLOOR",
    "REFRESH_FAILED",
    "SETTINGS_RESOURCE",
    "AuthService",
    "CreatedApiKey",
    "Throttled",
    "TokenPair",
    "identity_resource",
]


class AuthService:
    """Logins, tokens and credentials of the identities of a namespace (or of global)."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        identities: IdentityService,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        issuer: TokenIssuer,
        namespaces: NamespaceService,
        access: Access,
        keys: KeySource,
        token_settings: TokenSettings,
        audit: AuditTrail,
        refresh_lifetime: timedelta = DEFAULT_REFRESH_LIFETIME,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`access` authorizes the administrative methods. `keys` (the vault) and
        `token_settings` are the ones `issuer` was built with: the JWKS and the discovery
        document come from them."""
        self._grants = TokenGrants(
            unit_of_work=unit_of_work,
            identities=identities,
            hasher=hasher,
            throttle=throttle,
            issuer=issuer,
            namespaces=namespaces,
            audit=audit,
            refresh_lifetime=refresh_lifetime,
            clock=clock,
        )
        self._admin = CredentialAdmin(
            unit_of_work=unit_of_work,
            hasher=hasher,
            namespaces=namespaces,
            access=access,
            clock=clock,
        )
        self._discovery = Discovery(keys=keys, token_settings=token_settings, clock=clock)

    # --- grants: see TokenGrants ----------------------------------------------------------

    async def password_grant(self, *, namespace: str, username: str, password: str) -> TokenPair:
        """An access and a refresh token for a login and its password."""
        return await self._grants.password_grant(
            namespace=namespace, username=username, password=password
        )

    async def refresh_grant(self, *, namespace: str, refresh_token: str) -> TokenPair:
        """A new access token and a new refresh token (same family) for an unused one."""
        return await self._grants.refresh_grant(namespace=namespace, refresh_token=refresh_token)

    async def client_credentials_grant(
        self, *, namespace: str, client_id: str, client_secret: str
    ) -> TokenPair:
        """An access token (no refresh token) for an API key."""
        return await self._grants.client_credentials_grant(
            namespace=namespace, client_id=client_id, client_secret=client_secret
        )

    async def revoke(self, *, namespace: str, token: str) -> None:
        """RFC 7009: revoke a refresh token's whole family; anything else is ignored."""
        await self._grants.revoke(namespace=namespace, token=token)

    # --- administration: see CredentialAdmin ----------------------------------------------

    async def set_password(
        self, *, principal: Principal, namespace: str, identity_id: str, password: str
    ) -> None:
        """Set an identity's password; its refresh tokens are revoked."""
        await self._admin.set_password(
            principal=principal, namespace=namespace, identity_id=identity_id, password=password
        )

    async def get_password_rules(self, *, principal: Principal, namespace: str) -> PasswordRules:
        """The namespace's password rules (the defaults until set)."""
        return await self._admin.get_password_rules(principal=principal, namespace=namespace)

    async def put_password_rules(
        self, *, principal: Principal, namespace: str, min_length: int
    ) -> PasswordRules:
        """Set the minimum password length of the namespace."""
        return await self._admin.put_password_rules(
            principal=principal, namespace=namespace, min_length=min_length
        )

    async def create_api_key(
        self, *, principal: Principal, namespace: str, identity_id: str, description: str = ""
    ) -> CreatedApiKey:
        """A new API key for an identity; its secret is returned this once."""
        return await self._admin.create_api_key(
            principal=principal,
            namespace=namespace,
            identity_id=identity_id,
            description=description,
        )

    async def list_api_keys(
        self,
        *,
        principal: Principal,
        namespace: str,
        identity_id: str,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[ApiKey]:
        """The identity's unrevoked API keys by key id (never their secrets)."""
        return await self._admin.list_api_keys(
            principal=principal,
            namespace=namespace,
            identity_id=identity_id,
            cursor=cursor,
            limit=limit,
        )

    async def revoke_api_key(
        self, *, principal: Principal, namespace: str, identity_id: str, key_id: str
    ) -> None:
        """Revoke one of the identity's API keys; idempotent."""
        await self._admin.revoke_api_key(
            principal=principal, namespace=namespace, identity_id=identity_id, key_id=key_id
        )

    # --- discovery: see Discovery ---------------------------------------------------------

    async def jwks(self, *, namespace: str) -> dict[str, Any]:
        """The namespace's JWK set."""
        return await self._discovery.jwks(namespace=namespace)

    def openid_configuration(
        self, *, namespace: str, base_url: str | None = None
    ) -> dict[str, Any]:
        """The namespace's OpenID Provider metadata."""
        return self._discovery.openid_configuration(namespace=namespace, base_url=base_url)

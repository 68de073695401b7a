"""The discovery documents of a namespace: its JWK set and its OpenID Provider metadata."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from obp.kernel.clock import utcnow
from obp.kernel.errors import NotFound
from obp.kernel.names import is_valid_namespace_name
from obp.services.iam.grants import GRANT_TYPES
from obp.services.iam.tokens import ALGORITHM, KeySource, TokenSettings, jwks


class Discovery:
    """What verifiers and OAuth2 clients read to use a namespace's tokens."""

    def __init__(
        self,
        *,
        keys: KeySource,
        token_settings: TokenSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`keys` (the vault) and `token_settings` are the ones the token issuer was built
        with."""
        self._keys = keys
        self._token_settings = token_settings
        self._clock = clock

    async def jwks(self, *, namespace: str) -> dict[str, Any]:
        """The namespace's JWK set: active keys, and retired ones until their tokens expire."""
        if not is_valid_namespace_name(namespace):
            raise NotFound(f"namespace {namespace!r} does not exist")
        pairs = await self._keys.key_pairs(namespace=namespace)
        return jwks(pairs, now=self._clock(), max_token_lifetime=self._token_settings.key_retention)

    def openid_configuration(
        self, *, namespace: str, base_url: str | None = None
    ) -> dict[str, Any]:
        """The namespace's OpenID Provider metadata (RFC 8414 / OIDC Discovery).

        Endpoint URLs are built from `base_url` (`scheme://host[:port]`, the platform's
        public address) when given, else from the issuer URL.
        """
        if not is_valid_namespace_name(namespace):
            raise NotFound(f"namespace {namespace!r} does not exist")
        issuer = self._token_settings.issuer_for(namespace)
        base = (
            issuer if base_url is None else f"{base_url.rstrip('/')}/api/v1/namespaces/{namespace}"
        )
        return {
            "issuer": issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "token_endpoint": f"{base}/iam/token",
            "revocation_endpoint": f"{base}/iam/token/revoke",
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "ns", "name", "iat", "exp", "jti", "client_id"],
        }

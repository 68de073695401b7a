"""The OAuth2 grants of a namespace (or of global): password, refresh token, client
credentials, and token revocation (RFC 7009).

Failures never say which part was wrong: an unknown login, a wrong password and a blocked
identity all get the same `Unauthorized` after the same argon2 work, and every failure counts
towards the login's throttle, so neither the message, the timing nor a 429 tells whether a
login exists. Each failure is logged at warning as an audit record naming the namespace, the
reason and the identity id when known, otherwise a digest of the login; never a password,
token or key.

Refresh tokens rotate on every use and form a family (the chain of rotations from one login).
Presenting a token that was already used means two parties hold the family (a stolen token,
or a replay), so the whole family is revoked: the thief and the victim both have to log in
again. Two concurrent uses of the same token are indistinguishable from that, and are treated
the same way: exactly one wins the atomic "mark used", the other revokes the family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from obp.kernel.clock import utcnow
from obp.kernel.errors import NotFound, Unauthorized
from obp.kernel.ids import new_id
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.ports import AuditTrail, UnitOfWorkFactory
from obp.services.iam import opaque
from obp.services.iam.credentials import ApiKey, CredentialRepository, RefreshToken
from obp.services.iam.identities import IdentityService
from obp.services.iam.login_guard import LoginGuard
from obp.services.iam.model import Identity
from obp.services.iam.passwords import DEFAULT_MAX_LENGTH, PasswordHasher
from obp.services.iam.repository import IamRepository
from obp.services.iam.throttle import LoginThrottle
from obp.services.iam.tokens import IssuedToken, TokenIssuer
from obp.services.namespaces import NamespaceService

log = structlog.get_logger("obp.iam.auth")

LOGIN_FAILED = "invalid username or password"
CLIENT_FAILED = "invalid client credentials"
REFRESH_FAILED = "the refresh token is invalid, expired or revoked"
DEFAULT_REFRESH_LIFETIME = timedelta(days=30)
# Rules cap passwords at DEFAULT_MAX_LENGTH characters after NFKC normalization, which may
# shorten text; anything this long cannot be one of them.
MAX_PRESENTED_PASSWORD = 4 * DEFAULT_MAX_LENGTH
GRANT_TYPES = ("password", "refresh_token", "client_credentials")
_API_KEY_LOGIN_PREFIX = "apikey:"  # ':' is not allowed in login names, so no clash


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a token endpoint answers (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 (the RFC 6750 token type, not a secret)


class TokenGrants:
    """Logins and tokens of the identities of a namespace (or of global)."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        identities: IdentityService,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        issuer: TokenIssuer,
        namespaces: NamespaceService,
        audit: AuditTrail,
        refresh_lifetime: timedelta = DEFAULT_REFRESH_LIFETIME,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if refresh_lifetime <= timedelta(0):
            raise ValueError(f"refresh_lifetime must be positive, got {refresh_lifetime}")
        self._uow = unit_of_work
        self._identities = identities
        self._hasher = hasher
        self._guard = LoginGuard(throttle=throttle, audit=audit)
        self._issuer = issuer
        self._namespaces = namespaces
        self._refresh_lifetime = refresh_lifetime
        self._clock = clock

    async def password_grant(self, *, namespace: str, username: str, password: str) -> TokenPair:
        """An access and a refresh token for a login and its password.

        `Throttled` while the login is locked after repeated failures; otherwise any failure
        is `Unauthorized("invalid username or password")`.
        """
        await self._guard.check(namespace, username)
        identity: Identity | None = None
        if len(password) > MAX_PRESENTED_PASSWORD:
            # No stored password is this long (rules cap it); do not let it cost a hash.
            reason = "password longer than any password can be"
        else:
            identity = await self._identities.identity_by_name(namespace=namespace, name=username)
            if identity is None or identity.password_hash is None:
                await self._hasher.verify_nothing(password)
                reason = "unknown login" if identity is None else "no password set"
            elif not await self._hasher.verify(identity.password_hash, password):
                reason = "wrong password"
            elif not identity.active:
                reason = "identity blocked"
            else:
                reason = ""
        if identity is None or reason:
            await self._guard.failed(
                grant="password",
                namespace=namespace,
                login=username,
                identity_id=None if identity is None else identity.id,
                reason=reason,
            )
            raise Unauthorized(LOGIN_FAILED)
        await self._guard.succeeded(namespace=namespace, login=username)
        assert identity.password_hash is not None
        if self._hasher.needs_rehash(identity.password_hash):
            await self._rehash(identity, password)
        issued = await self._access_token(namespace, identity, failure=LOGIN_FAILED)
        refresh = await self._new_refresh_token(namespace, identity.id, family_id=new_id())
        log.info("login", audit=True, namespace=namespace, identity=identity.id, grant="password")
        return _pair(issued, refresh)

    async def refresh_grant(self, *, namespace: str, refresh_token: str) -> TokenPair:
        """A new access token and a new refresh token (same family) for an unused refresh token.

        A token used before revokes its whole family (reuse detection). Any failure is
        `Unauthorized`.
        """
        if not opaque.is_refresh_token(refresh_token):
            raise Unauthorized(REFRESH_FAILED)
        token_digest = opaque.digest(refresh_token)
        async with self._uow(write=False) as uow:
            stored = await CredentialRepository(uow.connection).refresh_token(
                namespace, token_digest
            )
            identity = (
                None
                if stored is None
                else await IamRepository(uow.connection).identity(namespace, stored.identity_id)
            )
        if stored is None:
            self._guard.refused(
                grant="refresh_token", namespace=namespace, reason="unknown refresh token"
            )
            raise Unauthorized(REFRESH_FAILED)
        if stored.revoked_at is None and stored.used_at is not None:
            await self._revoke_reused(stored, concurrent=False)
            raise Unauthorized(REFRESH_FAILED)
        reason = self._refresh_refusal(stored, identity)
        if reason:
            self._guard.refused(
                grant="refresh_token",
                namespace=namespace,
                identity_id=stored.identity_id,
                family=stored.family_id,
                reason=reason,
            )
            raise Unauthorized(REFRESH_FAILED)
        assert identity is not None
        # Signed before the rotation commits (the vault may write a key, which must not wait
        # for our write lock); it is handed out only if the rotation does commit.
        issued = await self._access_token(namespace, identity, failure=REFRESH_FAILED)
        new_token, new_digest = opaque.new_refresh_token()
        now = self._clock()
        async with self._uow() as uow:
            repository = CredentialRepository(uow.connection)
            if not await repository.mark_refresh_token_used(namespace, token_digest, at=now):
                current = await repository.refresh_token(namespace, token_digest)
                await repository.revoke_refresh_family(namespace, stored.family_id, at=now)
                await uow.commit()
                if current is not None and current.used_at is not None:
                    self._log_reuse(stored, concurrent=True)
                raise Unauthorized(REFRESH_FAILED)
            await repository.add_refresh_token(
                RefreshToken(
                    namespace=namespace,
                    digest=new_digest,
                    family_id=stored.family_id,
                    identity_id=identity.id,
                    created_at=now,
                    expires_at=now + self._refresh_lifetime,
                )
            )
            await uow.commit()
        return _pair(issued, new_token)

    async def client_credentials_grant(
        self, *, namespace: str, client_id: str, client_secret: str
    ) -> TokenPair:
        """An access token (no refresh token) for an API key: `client_id` is the key id,
        `client_secret` the whole key as shown at creation.

        `Throttled` while the client is locked after repeated failures; otherwise any failure
        is `Unauthorized("invalid client credentials")`.
        """
        login = _API_KEY_LOGIN_PREFIX + client_id
        await self._guard.check(namespace, login)
        key: ApiKey | None = None
        identity: Identity | None = None
        parsed = opaque.parse_api_key(client_secret)
        if parsed is not None and parsed[0] == client_id:
            async with self._uow(write=False) as uow:
                key = await CredentialRepository(uow.connection).api_key(namespace, client_id)
                if key is not None:
                    identity = await IamRepository(uow.connection).identity(
                        namespace, key.identity_id
                    )
        if key is None:
            reason = "malformed key" if parsed is None else "unknown key"
        elif not opaque.matches(client_secret, key.digest):
            reason = "wrong secret"
        elif key.revoked_at is not None:
            reason = "revoked key"
        elif identity is None:
            reason = "identity deleted"
        elif not identity.active:
            reason = "identity blocked"
        else:
            reason = ""
        if key is None or identity is None or reason:
            await self._guard.failed(
                grant="client_credentials",
                namespace=namespace,
                login=login,
                identity_id=None if key is None else key.identity_id,
                reason=reason,
                client_id=client_id if key is not None else None,
            )
            raise Unauthorized(CLIENT_FAILED)
        await self._guard.succeeded(namespace=namespace, login=login)
        issued = await self._access_token(
            namespace, identity, failure=CLIENT_FAILED, extra={"client_id": key.id}
        )
        log.info(
            "login",
            audit=True,
            namespace=namespace,
            identity=identity.id,
            grant="client_credentials",
            client_id=key.id,
        )
        return _pair(issued, None)

    async def revoke(self, *, namespace: str, token: str) -> None:
        """RFC 7009: revoke a refresh token's whole family. Anything else (an access token,
        an unknown or foreign token) is ignored, so the answer never tells what it was."""
        if not opaque.is_refresh_token(token):
            return
        token_digest = opaque.digest(token)
        async with self._uow() as uow:
            repository = CredentialRepository(uow.connection)
            stored = await repository.refresh_token(namespace, token_digest)
            if stored is None:
                return
            revoked = await repository.revoke_refresh_family(
                namespace, stored.family_id, at=self._clock()
            )
            await uow.commit()
        if revoked:
            log.info(
                "refresh tokens revoked",
                audit=True,
                namespace=namespace,
                identity=stored.identity_id,
                family=stored.family_id,
                tokens=revoked,
            )

    # --- helpers --------------------------------------------------------------------------

    def _refresh_refusal(self, stored: RefreshToken, identity: Identity | None) -> str:
        if stored.revoked_at is not None:
            return "revoked refresh token"
        if stored.expires_at <= self._clock():
            return "expired refresh token"
        if identity is None:
            return "identity deleted"
        if not identity.active:
            return "identity blocked"
        return ""

    async def _revoke_reused(self, stored: RefreshToken, *, concurrent: bool) -> None:
        async with self._uow() as uow:
            await CredentialRepository(uow.connection).revoke_refresh_family(
                stored.namespace, stored.family_id, at=self._clock()
            )
            await uow.commit()
        self._log_reuse(stored, concurrent=concurrent)

    def _log_reuse(self, stored: RefreshToken, *, concurrent: bool) -> None:
        self._guard.refused(
            grant="refresh_token",
            namespace=stored.namespace,
            identity_id=stored.identity_id,
            family=stored.family_id,
            reason="refresh token reused: family revoked"
            + (" (concurrent use)" if concurrent else ""),
        )

    async def _rehash(self, identity: Identity, password: str) -> None:
        """Store the password again with the current parameters, unless it changed meanwhile."""
        assert identity.password_hash is not None
        new_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            await CredentialRepository(uow.connection).set_password_hash(
                identity.namespace,
                identity.id,
                new_hash,
                at=self._clock(),
                expected=identity.password_hash,
            )
            await uow.commit()

    async def _access_token(
        self,
        namespace: str,
        identity: Identity,
        *,
        failure: str,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign an access token; `Unauthorized(failure)` if the namespace is gone.

        Identities of a deleted namespace linger until the purge runs; they must not log in.
        The namespace's creation time also keeps the vault from signing with a key left over
        from an earlier namespace of the same name.
        """
        not_before: datetime | None = None
        if namespace != GLOBAL_NAMESPACE:
            try:
                found = await self._namespaces.lookup(name=namespace)
            except NotFound:
                raise Unauthorized(failure) from None
            if identity.created_at < found.created_at:
                # An identity of a deleted namespace whose name was taken again: not a member.
                raise Unauthorized(failure)
            not_before = found.created_at
        return await self._issuer.issue(
            namespace=namespace,
            identity_id=identity.id,
            name=identity.name,
            not_before=not_before,
            extra=extra,
        )

    async def _new_refresh_token(self, namespace: str, identity_id: str, *, family_id: str) -> str:
        token, token_digest = opaque.new_refresh_token()
        now = self._clock()
        async with self._uow() as uow:
            await CredentialRepository(uow.connection).add_refresh_token(
                RefreshToken(
                    namespace=namespace,
                    digest=token_digest,
                    family_id=family_id,
                    identity_id=identity_id,
                    created_at=now,
                    expires_at=now + self._refresh_lifetime,
                )
            )
            await uow.commit()
        return token


def _pair(issued: IssuedToken, refresh_token: str | None) -> TokenPair:
    return TokenPair(
        access_token=issued.token,
        expires_in=int((issued.expires_at - issued.issued_at).total_seconds()),
        refresh_token=refresh_token,
    )

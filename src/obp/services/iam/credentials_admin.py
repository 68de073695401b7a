"""Credential administration of a namespace (or of global): identities' passwords, their
API keys and the namespace's password rules. Every method is authorized for its principal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import InvalidInput, NotFound
from obp.kernel.events import Event
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import UnitOfWorkFactory
from obp.services.iam import model, opaque
from obp.services.iam.credentials import ApiKey, CredentialRepository
from obp.services.iam.passwords import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_LENGTH,
    PasswordHasher,
    PasswordRules,
)
from obp.services.iam.repository import IamRepository
from obp.services.iam.service import EVENT_SERVICE
from obp.services.namespaces import NamespaceService

# NIST SP 800-63B: memorized secrets chosen by people are at least 8 characters.
MIN_PASSWORD_LENGTH_FLOOR = 8
SETTINGS_RESOURCE = "iam:settings"


class CreatedApiKey(NamedTuple):
    """A new API key: the secret is shown this once and never stored."""

    key_id: str
    secret: str
    created_at: datetime


def identity_resource(identity_id: str) -> str:
    """The authorization resource of an identity."""
    return f"iam:identity/{identity_id}"


class CredentialAdmin:
    """Passwords, API keys and password rules of the identities of a namespace."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        hasher: PasswordHasher,
        namespaces: NamespaceService,
        access: Access,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`access` authorizes every method."""
        self._uow = unit_of_work
        self._hasher = hasher
        self._namespaces = namespaces
        self._access = access
        self._clock = clock

    # --- passwords ------------------------------------------------------------------------

    async def set_password(
        self, *, principal: Principal, namespace: str, identity_id: str, password: str
    ) -> None:
        """Set an identity's password (per the namespace's rules); its refresh tokens are
        revoked in the same transaction, so every session must log in again."""
        await self._authorize(
            principal,
            namespace=namespace,
            action="iam.identity.password.set",
            resource=identity_resource(identity_id),
        )
        rules = await self._rules(namespace)
        rules.check(password)
        password_hash = await self._hasher.hash(password)
        now = self._clock()
        async with self._uow() as uow:
            repository = CredentialRepository(uow.connection)
            if not await repository.set_password_hash(
                namespace, identity_id, password_hash, at=now
            ):
                raise NotFound(f"identity {identity_id!r} does not exist in {namespace!r}")
            revoked = await repository.revoke_identity_refresh_tokens(
                namespace, identity_id, at=now
            )
            uow.emit(
                _event(
                    namespace,
                    "password_set",
                    principal,
                    identity=identity_id,
                    refresh_tokens_revoked=revoked,
                )
            )
            await uow.commit()

    async def get_password_rules(self, *, principal: Principal, namespace: str) -> PasswordRules:
        """The namespace's password rules (the defaults until set)."""
        await self._authorize(
            principal, namespace=namespace, action="iam.settings.get", resource=SETTINGS_RESOURCE
        )
        await self._require_namespace(namespace)
        return await self._rules(namespace)

    async def put_password_rules(
        self, *, principal: Principal, namespace: str, min_length: int
    ) -> PasswordRules:
        """Set the minimum password length of the namespace (for passwords set from now on)."""
        await self._authorize(
            principal, namespace=namespace, action="iam.settings.set", resource=SETTINGS_RESOURCE
        )
        if (
            isinstance(min_length, bool)
            or not MIN_PASSWORD_LENGTH_FLOOR <= min_length <= DEFAULT_MAX_LENGTH
        ):
            raise InvalidInput.field(
                ("min_password_length",),
                f"must be an integer between {MIN_PASSWORD_LENGTH_FLOOR} and "
                f"{DEFAULT_MAX_LENGTH}, got {min_length!r}",
            )
        await self._require_namespace(namespace)
        async with self._uow() as uow:
            await CredentialRepository(uow.connection).put_min_password_length(
                namespace, min_length, at=self._clock()
            )
            uow.emit(
                _event(namespace, "settings_changed", principal, min_password_length=min_length)
            )
            await uow.commit()
        return PasswordRules(min_length=min_length)

    # --- API keys -------------------------------------------------------------------------

    async def create_api_key(
        self, *, principal: Principal, namespace: str, identity_id: str, description: str = ""
    ) -> CreatedApiKey:
        """A new API key for an identity; its secret is returned this once, stored hashed."""
        await self._authorize(
            principal,
            namespace=namespace,
            action="iam.apikey.create",
            resource=identity_resource(identity_id),
        )
        model.check_description(description)
        key_id, secret, key_digest = opaque.new_api_key()
        now = self._clock()
        async with self._uow() as uow:
            if await IamRepository(uow.connection).identity(namespace, identity_id) is None:
                raise NotFound(f"identity {identity_id!r} does not exist in {namespace!r}")
            await CredentialRepository(uow.connection).add_api_key(
                ApiKey(
                    namespace=namespace,
                    id=key_id,
                    identity_id=identity_id,
                    description=description,
                    created_at=now,
                    digest=key_digest,
                )
            )
            uow.emit(
                _event(namespace, "api_key_created", principal, identity=identity_id, key=key_id)
            )
            await uow.commit()
        return CreatedApiKey(key_id=key_id, secret=secret, created_at=now)

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
        await self._authorize(
            principal,
            namespace=namespace,
            action="iam.apikey.list",
            resource=identity_resource(identity_id),
        )
        size, after = validate_limit(limit), decode_cursor(cursor)
        async with self._uow(write=False) as uow:
            if await IamRepository(uow.connection).identity(namespace, identity_id) is None:
                raise NotFound(f"identity {identity_id!r} does not exist in {namespace!r}")
            found = await CredentialRepository(uow.connection).api_keys(
                namespace, identity_id, after=after, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda key: key.id)

    async def revoke_api_key(
        self, *, principal: Principal, namespace: str, identity_id: str, key_id: str
    ) -> None:
        """Revoke one of the identity's API keys; idempotent. Access tokens it obtained
        still work until they expire."""
        await self._authorize(
            principal,
            namespace=namespace,
            action="iam.apikey.revoke",
            resource=identity_resource(identity_id),
        )
        async with self._uow() as uow:
            if await CredentialRepository(uow.connection).revoke_api_key(
                namespace, identity_id, key_id, at=self._clock()
            ):
                uow.emit(
                    _event(
                        namespace, "api_key_revoked", principal, identity=identity_id, key=key_id
                    )
                )
            await uow.commit()

    # --- helpers --------------------------------------------------------------------------

    async def _authorize(
        self, principal: Principal, *, namespace: str, action: str, resource: str
    ) -> None:
        await self._access.require(principal, namespace=namespace, action=action, resource=resource)

    async def _require_namespace(self, namespace: str) -> None:
        if namespace != GLOBAL_NAMESPACE:
            await self._namespaces.lookup(name=namespace)

    async def _rules(self, namespace: str) -> PasswordRules:
        async with self._uow(write=False) as uow:
            stored = await CredentialRepository(uow.connection).min_password_length(namespace)
        return PasswordRules(min_length=DEFAULT_MIN_LENGTH if stored is None else stored)


def _event(namespace: str, name: str, principal: Principal, **payload: Any) -> Event:
    return Event(
        namespace=namespace,
        service=EVENT_SERVICE,
        name=name,
        payload={**payload, "by": principal.identity},
    )

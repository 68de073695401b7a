"""Identity administration: logins with their policies and roles, and their grants."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, NotFound
from obp.kernel.ids import new_id
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import Cache, UnitOfWorkFactory
from obp.services.iam import model
from obp.services.iam.model import Identity, Ref
from obp.services.iam.repository import IamRepository
from obp.services.iam.service import attach_check, attach_refs, emit_changed
from obp.services.namespaces import NamespaceService

_UNSET: Any = object()


class IdentityService:
    """The identities of a namespace (or of global)."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        namespaces: NamespaceService,
        access: Access,
        cache: Cache,
    ) -> None:
        self._uow = unit_of_work
        self._namespaces = namespaces
        self._access = access
        self._cache = cache

    # --- identities -----------------------------------------------------------------------

    async def create_identity(
        self,
        *,
        principal: Principal,
        namespace: str,
        name: str,
        policies: Sequence[str] = (),
        roles: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        active: bool = True,
        password_hash: str | None = None,
    ) -> Identity:
        """A new identity; its name is its login in the namespace."""
        await self._authorize(principal, namespace, "iam.identity.create", "iam:identity/*")
        await self._require_namespace(principal, namespace)
        now = utcnow()
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            identity = Identity(
                namespace=namespace,
                id=new_id(),
                name=model.check_name(name),
                active=active,
                metadata=dict(metadata or {}),
                policies=await attach_refs(
                    repository,
                    namespace,
                    policies,
                    "policy",
                    authorize=attach_check(self._access, principal, "policy"),
                ),
                roles=await attach_refs(
                    repository,
                    namespace,
                    roles,
                    "role",
                    authorize=attach_check(self._access, principal, "role"),
                ),
                created_at=now,
                updated_at=now,
                password_hash=password_hash,
            )
            if not await repository.add_identity(identity):
                raise Conflict(f"an identity named {name!r} already exists in {namespace!r}")
            await uow.commit()
        return identity

    async def get_identity(
        self, *, principal: Principal, namespace: str, identity_id: str
    ) -> Identity:
        """One identity, or `NotFound`."""
        await self._authorize(
            principal, namespace, "iam.identity.get", f"iam:identity/{identity_id}"
        )
        async with self._uow(write=False) as uow:
            identity = await IamRepository(uow.connection).identity(namespace, identity_id)
        if identity is None:
            raise NotFound(f"identity {identity_id!r} does not exist in {namespace!r}")
        return identity

    async def update_identity(
        self,
        *,
        principal: Principal,
        namespace: str,
        identity_id: str,
        name: str | None = None,
        active: bool | None = None,
        metadata: dict[str, Any] | None = None,
        policies: Sequence[str] | None = None,
        roles: Sequence[str] | None = None,
    ) -> Identity:
        """Change an identity; blocking (active=False) takes effect on its next request."""
        await self._authorize(
            principal, namespace, "iam.identity.update", f"iam:identity/{identity_id}"
        )
        if active is not None:
            action = "iam.identity.unblock" if active else "iam.identity.block"
            await self._authorize(principal, namespace, action, f"iam:identity/{identity_id}")
        return await self._update(
            namespace,
            identity_id,
            principal=principal,
            name=name,
            active=active,
            metadata=metadata,
            policies=policies,
            roles=roles,
        )

    async def set_blocked(
        self, *, principal: Principal, namespace: str, identity_id: str, blocked: bool
    ) -> Identity:
        """Block or unblock: a blocked identity's next request is refused on every replica."""
        action = "iam.identity.block" if blocked else "iam.identity.unblock"
        await self._authorize(principal, namespace, action, f"iam:identity/{identity_id}")
        return await self._update(namespace, identity_id, active=not blocked)

    async def set_password_hash(
        self, *, namespace: str, identity_id: str, password_hash: str
    ) -> None:
        """Store a new password hash (the caller authorized and hashed it)."""
        await self._update(namespace, identity_id, password_hash=password_hash)

    async def _update(
        self,
        namespace: str,
        identity_id: str,
        *,
        principal: Principal | None = None,
        name: str | None = None,
        active: bool | None = None,
        metadata: dict[str, Any] | None = None,
        policies: Sequence[str] | None = None,
        roles: Sequence[str] | None = None,
        password_hash: str | None = _UNSET,
    ) -> Identity:
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            current = await repository.identity(namespace, identity_id)
            if current is None:
                raise NotFound(f"identity {identity_id!r} does not exist in {namespace!r}")
            changed = Identity(
                namespace=namespace,
                id=identity_id,
                name=current.name if name is None else model.check_name(name),
                active=current.active if active is None else active,
                metadata=current.metadata if metadata is None else dict(metadata),
                policies=(
                    current.policies
                    if policies is None
                    else await attach_refs(
                        repository,
                        namespace,
                        policies,
                        "policy",
                        authorize=self._attach(principal, "policy"),
                    )
                ),
                roles=(
                    current.roles
                    if roles is None
                    else await attach_refs(
                        repository,
                        namespace,
                        roles,
                        "role",
                        authorize=self._attach(principal, "role"),
                    )
                ),
                created_at=current.created_at,
                updated_at=utcnow(),
                password_hash=(current.password_hash if password_hash is _UNSET else password_hash),
            )
            if not await repository.update_identity(changed):
                raise Conflict(f"an identity named {changed.name!r} already exists")
            emit_changed(uow, namespace, identity_id)
            await uow.commit()
        if changed.active != current.active:
            # The shared cache flag holds on every replica at once; the event only follows.
            key = model.blocked_key(namespace, identity_id)
            if changed.active:
                await self._cache.delete(key)
            else:
                await self._cache.set(key, b"1")
        return changed

    async def delete_identity(
        self, *, principal: Principal, namespace: str, identity_id: str
    ) -> None:
        """Delete an identity; idempotent. Its tokens stop working on their next use."""
        await self._authorize(
            principal, namespace, "iam.identity.delete", f"iam:identity/{identity_id}"
        )
        async with self._uow() as uow:
            if await IamRepository(uow.connection).delete_identity(namespace, identity_id):
                emit_changed(uow, namespace, identity_id)
            await uow.commit()

    async def list_identities(
        self,
        *,
        principal: Principal,
        namespace: str,
        query: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Identity]:
        """Identities by name."""
        await self._authorize(principal, namespace, "iam.identity.list", "iam:identity/*")
        size, after = validate_limit(limit), decode_cursor(cursor)
        async with self._uow(write=False) as uow:
            found = await IamRepository(uow.connection).identities(
                namespace, query=query, after=after, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda i: i.name)

    async def create_first(
        self, *, namespace: str, name: str, policies: Sequence[Ref], password_hash: str
    ) -> Identity | None:
        """The platform's first admin, made once at first start (no caller yet).

        None if the namespace has any identity already: a renamed or deleted admin is never
        brought back by a restart with the bootstrap settings still in place.
        """
        now = utcnow()
        identity = Identity(
            namespace=namespace,
            id=new_id(),
            name=model.check_name(name),
            active=True,
            metadata={"created_by": "bootstrap"},
            policies=tuple(policies),
            roles=(),
            created_at=now,
            updated_at=now,
            password_hash=password_hash,
        )
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            if await repository.has_identities(namespace):
                return None
            if not await repository.add_identity(identity):
                return None
            await uow.commit()
        return identity

    async def identity_by_name(self, *, namespace: str, name: str) -> Identity | None:
        """The identity that logs in as `name` (for authentication)."""
        async with self._uow(write=False) as uow:
            return await IamRepository(uow.connection).identity_by_name(namespace, name)

    def _attach(self, principal: Principal | None, kind: str) -> Callable[[Ref], Awaitable[None]]:
        if principal is None:
            raise RuntimeError("attachments change only on behalf of a caller")
        return attach_check(self._access, principal, kind)

    async def _require_namespace(self, principal: Principal, namespace: str) -> None:
        if namespace != GLOBAL_NAMESPACE:
            await self._namespaces.lookup(name=namespace)

    async def _authorize(
        self, principal: Principal, namespace: str, action: str, resource: str
    ) -> None:
        await self._access.require(principal, namespace=namespace, action=action, resource=resource)

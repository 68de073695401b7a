"""Namespace use cases: create, read, change, delete and search tenants."""

from __future__ import annotations

from datetime import datetime

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import NotFound
from obp.kernel.events import Event
from obp.kernel.names import (
    GLOBAL_NAMESPACE,
    is_valid_namespace_name,
    validate_new_namespace_name,
)
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import UnitOfWorkFactory
from obp.kernel.usage import Usage, UsageSource
from obp.services.namespaces.model import Namespace, check_description, check_full_name
from obp.services.namespaces.repository import NamespaceRepository

EVENT_SERVICE = "namespace"


class NamespaceService:
    """Tenants: every other context keys its data by a namespace created here."""

    def __init__(self, *, unit_of_work: UnitOfWorkFactory, access: Access) -> None:
        self._uow = unit_of_work
        self._access = access
        self._usage_sources: dict[str, UsageSource] = {}

    def add_usage_source(self, service: str, source: UsageSource) -> None:
        """Report what `source` stores per namespace under `service` (wired by bootstrap)."""
        self._usage_sources[service] = source

    async def create(
        self, *, principal: Principal, name: str, full_name: str = "", description: str = ""
    ) -> Namespace:
        """Create a namespace; `Conflict` if the name exists, `InvalidInput` if not allowed."""
        await self._access.require(
            principal,
            namespace=GLOBAL_NAMESPACE,
            action="namespace.create",
            resource=f"namespace:{name}",
        )
        validate_new_namespace_name(name)
        now = utcnow()
        namespace = Namespace(
            name=name,
            full_name=check_full_name(full_name),
            description=check_description(description),
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            await NamespaceRepository(uow.connection).add(namespace)
            uow.emit(_event(namespace, "created", by=principal))
            await uow.commit()
        return namespace

    async def get(self, *, principal: Principal, name: str) -> Namespace:
        """The namespace called `name`, or `NotFound`."""
        await self._authorize(principal, name, "namespace.get")
        return await self.lookup(name=name)

    async def get_with_usage(
        self, *, principal: Principal, name: str
    ) -> tuple[Namespace, dict[str, Usage]]:
        """The namespace and what it stores in each storage service."""
        namespace = await self.get(principal=principal, name=name)
        usage = {
            service: await source.usage(namespace=name, since=namespace.created_at)
            for service, source in sorted(self._usage_sources.items())
        }
        return namespace, usage

    async def created_at(self, name: str) -> datetime | None:
        """When the namespace called `name` was created, or None if it does not exist."""
        try:
            return (await self.lookup(name=name)).created_at
        except NotFound:
            return None

    async def lookup(self, *, name: str) -> Namespace:
        """The namespace called `name`, for other contexts checking it exists (no caller)."""
        if not is_valid_namespace_name(name):
            raise NotFound(f"namespace {name!r} does not exist")
        async with self._uow(write=False) as uow:
            namespace = await NamespaceRepository(uow.connection).get(name)
        if namespace is None:
            raise NotFound(f"namespace {name!r} does not exist")
        return namespace

    async def update(
        self,
        *,
        principal: Principal,
        name: str,
        full_name: str | None = None,
        description: str | None = None,
    ) -> Namespace:
        """Change the display name and/or description of an existing namespace."""
        await self._authorize(principal, name, "namespace.update")
        async with self._uow() as uow:
            repository = NamespaceRepository(uow.connection)
            # Locked, so concurrent PATCHes apply one after the other instead of losing one.
            current = (
                await repository.get(name, for_update=True)
                if is_valid_namespace_name(name)
                else None
            )
            if current is None:
                raise NotFound(f"namespace {name!r} does not exist")
            changed = current.changed(full_name=full_name, description=description, at=utcnow())
            if (changed.full_name, changed.description) == (current.full_name, current.description):
                return current  # nothing to change: no write, no event
            if not await repository.update(changed):
                raise NotFound(f"namespace {name!r} does not exist")
            uow.emit(_event(changed, "updated", by=principal))
            await uow.commit()
        return changed

    async def delete(self, *, principal: Principal, name: str) -> None:
        """Delete a namespace; idempotent. `namespace.deleted` tells every context to purge."""
        await self._authorize(principal, name, "namespace.delete")
        if not is_valid_namespace_name(name):
            return
        async with self._uow() as uow:
            existed = await NamespaceRepository(uow.connection).delete(name)
            if existed:
                uow.emit(
                    Event(
                        namespace=name,
                        service=EVENT_SERVICE,
                        name="deleted",
                        payload={"name": name, "by": principal.identity},
                    )
                )
            await uow.commit()

    async def search(
        self,
        *,
        principal: Principal,
        query: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Namespace]:
        """Namespaces in name order, optionally those whose name or texts contain `query`."""
        await self._access.require(
            principal, namespace=GLOBAL_NAMESPACE, action="namespace.list", resource="namespace:*"
        )
        size = validate_limit(limit)
        after = decode_cursor(cursor)
        async with self._uow(write=False) as uow:
            found = await NamespaceRepository(uow.connection).search(
                query=query, after=after, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda namespace: namespace.name)

    async def _authorize(self, principal: Principal, name: str, action: str) -> None:
        # A namespace's own identities act on it inside it; platform admins reach it from global.
        scope = name if is_valid_namespace_name(name) else GLOBAL_NAMESPACE
        await self._access.require(
            principal, namespace=scope, action=action, resource=f"namespace:{name}"
        )


def _event(namespace: Namespace, name: str, *, by: Principal) -> Event:
    return Event(
        namespace=namespace.name,
        service=EVENT_SERVICE,
        name=name,
        payload={
            "name": namespace.name,
            "full_name": namespace.full_name,
            "description": namespace.description,
            "by": by.identity,
        },
    )

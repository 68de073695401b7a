"""Secret use cases: write a new version, read, list metadata, delete; values always sealed."""

from __future__ import annotations

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, NotFound
from obp.kernel.events import Event
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import UnitOfWorkFactory
from obp.services.namespaces import NamespaceService
from obp.services.secrets.model import (
    Secret,
    SecretVersion,
    check_description,
    check_name,
    check_value,
    value_aad,
)
from obp.services.secrets.repository import SecretRepository
from obp.services.vault import VaultService

EVENT_SERVICE = "secret"
# Concurrent writers of one secret race for the next version number; the loser tries again.
_VERSION_ATTEMPTS = 5


class SecretService:
    """A tenant's secrets: sealed with the namespace's data key, versioned, never listed."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        vault: VaultService,
        namespaces: NamespaceService,
        access: Access,
    ) -> None:
        self._uow = unit_of_work
        self._vault = vault
        self._namespaces = namespaces
        self._access = access

    async def put(
        self,
        *,
        principal: Principal,
        namespace: str,
        name: str,
        value: str,
        description: str | None = None,
    ) -> tuple[Secret, bool]:
        """Store `value` as the secret's next version; whether it is a new secret.

        The description carries over from the previous version when omitted.
        """
        await self._authorize(principal, namespace, "secret.set", name)
        check_name(name)
        plaintext = check_value(value)
        if description is not None:
            check_description(description)
        tenant = await self._namespaces.lookup(name=namespace)
        # Sealed before the transaction opens: the vault may need a write of its own.
        sealed = await self._vault.seal(
            namespace=namespace,
            plaintext=plaintext,
            aad=value_aad(name),
            not_before=tenant.created_at,
        )
        for _ in range(_VERSION_ATTEMPTS):
            async with self._uow() as uow:
                repository = SecretRepository(uow.connection)
                previous = await repository.latest(namespace, name, since=tenant.created_at)
                stored = SecretVersion(
                    namespace=namespace,
                    name=name,
                    version=await repository.next_version(namespace, name),
                    description=(
                        description
                        if description is not None
                        else (previous.description if previous else "")
                    ),
                    value_sealed=sealed,
                    created_at=utcnow(),
                    created_by=principal.identity,
                )
                if not await repository.add(stored):
                    continue
                uow.emit(_event(stored, "set"))
                await uow.commit()
            return _metadata(stored), previous is None
        raise Conflict(f"secret {name!r} is being written concurrently; retry")

    async def get(
        self, *, principal: Principal, namespace: str, name: str, version: int | None = None
    ) -> Secret:
        """The secret with its value: the newest version, or the one asked for."""
        await self._authorize(principal, namespace, "secret.get", name)
        check_name(name)
        # Only what this incarnation of the namespace wrote: a deleted namespace's secrets stay
        # invisible to a namespace created again under its name, even before their purge.
        since = (await self._namespaces.lookup(name=namespace)).created_at
        async with self._uow(write=False) as uow:
            repository = SecretRepository(uow.connection)
            stored = (
                await repository.latest(namespace, name, since=since)
                if version is None
                else await repository.version(namespace, name, version, since=since)
            )
        if stored is None:
            which = "" if version is None else f" version {version}"
            raise NotFound(f"secret {name!r}{which} does not exist in namespace {namespace!r}")
        plaintext = await self._vault.unseal(
            namespace=namespace, sealed=stored.value_sealed, aad=value_aad(name)
        )
        return Secret(
            name=stored.name,
            version=stored.version,
            description=stored.description,
            updated_at=stored.created_at,
            value=plaintext.decode(),
        )

    async def list(
        self,
        *,
        principal: Principal,
        namespace: str,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Secret]:
        """Names and metadata of the namespace's secrets, never their values."""
        await self._authorize(principal, namespace, "secret.list", "*")
        size = validate_limit(limit)
        after = decode_cursor(cursor)
        since = (await self._namespaces.lookup(name=namespace)).created_at
        async with self._uow(write=False) as uow:
            found = await SecretRepository(uow.connection).latest_versions(
                namespace, since=since, prefix=prefix, after=after, limit=size + 1
            )
        return page_of([_metadata(s) for s in found], limit=size, key_of=lambda s: s.name)

    async def delete(self, *, principal: Principal, namespace: str, name: str) -> None:
        """Delete every version of a secret; idempotent."""
        await self._authorize(principal, namespace, "secret.delete", name)
        check_name(name)
        async with self._uow() as uow:
            if await SecretRepository(uow.connection).delete(namespace, name):
                uow.emit(
                    Event(
                        namespace=namespace,
                        service=EVENT_SERVICE,
                        name="deleted",
                        payload={"name": name, "by": principal.identity},
                    )
                )
            await uow.commit()

    async def _authorize(
        self, principal: Principal, namespace: str, action: str, name: str
    ) -> None:
        await self._access.require(
            principal, namespace=namespace, action=action, resource=f"secret:{name}"
        )

    async def purge_namespace(self, event: Event) -> None:
        """Delete every secret a deleted namespace had when it was deleted."""
        async with self._uow() as uow:
            await SecretRepository(uow.connection).purge(
                event.namespace, created_before=event.occurred_at
            )
            await uow.commit()


def _metadata(stored: SecretVersion) -> Secret:
    return Secret(
        name=stored.name,
        version=stored.version,
        description=stored.description,
        updated_at=stored.created_at,
    )


def _event(stored: SecretVersion, name: str) -> Event:
    # Never the value, sealed or not: events travel to other services and their logs.
    return Event(
        namespace=stored.namespace,
        service=EVENT_SERVICE,
        name=name,
        payload={"name": stored.name, "version": stored.version, "by": stored.created_by},
    )

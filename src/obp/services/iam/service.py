"""IAM administration: policies and roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from obp.kernel.auth import Access, Principal
from obp.kernel.clock import utcnow
from obp.kernel.errors import Conflict, InvalidInput, NotFound
from obp.kernel.events import Event
from obp.kernel.ids import new_id
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.paging import Page, decode_cursor, page_of, validate_limit
from obp.kernel.ports import UnitOfWork, UnitOfWorkFactory
from obp.services.iam import model
from obp.services.iam.authz import validate_action, validate_resource
from obp.services.iam.credentials import CredentialRepository
from obp.services.iam.model import Policy, Ref, Role
from obp.services.iam.repository import IamRepository
from obp.services.iam.tables import iam_policies, iam_roles
from obp.services.namespaces import NamespaceService

EVENT_SERVICE = "iam"


class IamService:
    """Policies and roles of a namespace (or of global)."""

    def __init__(
        self, *, unit_of_work: UnitOfWorkFactory, namespaces: NamespaceService, access: Access
    ) -> None:
        self._uow = unit_of_work
        self._namespaces = namespaces
        self._access = access

    # --- policies -------------------------------------------------------------------------

    async def create_policy(
        self,
        *,
        principal: Principal,
        namespace: str,
        name: str,
        resources: Sequence[str],
        actions: Sequence[str],
        description: str = "",
        namespace_independent: bool = False,
    ) -> Policy:
        """A new policy; 409 if the name is taken in the namespace."""
        await self._authorize(principal, namespace, "iam.policy.create", "iam:policy/*")
        await self._require_namespace(principal, namespace)
        now = utcnow()
        policy = Policy(
            namespace=namespace,
            id=new_id(),
            name=model.check_name(name),
            description=model.check_description(description),
            resources=_patterns(resources, "resources", validate_resource),
            actions=_patterns(actions, "actions", validate_action),
            namespace_independent=namespace_independent,
            builtin=False,
            created_at=now,
            updated_at=now,
        )
        model.check_scope(namespace=namespace, namespace_independent=namespace_independent)
        async with self._uow() as uow:
            if not await IamRepository(uow.connection).add_policy(policy):
                raise Conflict(f"a policy named {name!r} already exists in {namespace!r}")
            emit_changed(uow, namespace)
            await uow.commit()
        return policy

    async def get_policy(self, *, principal: Principal, namespace: str, policy_id: str) -> Policy:
        """One policy, or `NotFound`."""
        await self._authorize(principal, namespace, "iam.policy.get", f"iam:policy/{policy_id}")
        async with self._uow(write=False) as uow:
            policy = await IamRepository(uow.connection).policy(namespace, policy_id)
        if policy is None:
            raise NotFound(f"policy {policy_id!r} does not exist in {namespace!r}")
        return policy

    async def update_policy(
        self,
        *,
        principal: Principal,
        namespace: str,
        policy_id: str,
        name: str | None = None,
        description: str | None = None,
        resources: Sequence[str] | None = None,
        actions: Sequence[str] | None = None,
    ) -> Policy:
        """Change a policy at runtime; every identity holding it is re-evaluated."""
        await self._authorize(principal, namespace, "iam.policy.update", f"iam:policy/{policy_id}")
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            current = await repository.policy(namespace, policy_id)
            if current is None:
                raise NotFound(f"policy {policy_id!r} does not exist in {namespace!r}")
            if current.builtin:
                raise Conflict(f"policy {current.name!r} is built in and cannot be changed")
            changed = Policy(
                namespace=namespace,
                id=policy_id,
                name=current.name if name is None else model.check_name(name),
                description=(
                    current.description
                    if description is None
                    else model.check_description(description)
                ),
                resources=(
                    current.resources
                    if resources is None
                    else _patterns(resources, "resources", validate_resource)
                ),
                actions=(
                    current.actions
                    if actions is None
                    else _patterns(actions, "actions", validate_action)
                ),
                namespace_independent=current.namespace_independent,
                builtin=False,
                created_at=current.created_at,
                updated_at=utcnow(),
            )
            if not await repository.update_policy(changed):
                raise Conflict(f"a policy named {changed.name!r} already exists in {namespace!r}")
            emit_changed(uow, namespace)
            await uow.commit()
        return changed

    async def delete_policy(self, *, principal: Principal, namespace: str, policy_id: str) -> None:
        """Delete a policy and detach it everywhere; built-in policies cannot be deleted."""
        await self._authorize(principal, namespace, "iam.policy.delete", f"iam:policy/{policy_id}")
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            current = await repository.policy(namespace, policy_id)
            if current is None:
                return
            if current.builtin:
                raise Conflict(f"policy {current.name!r} is built in and cannot be deleted")
            await repository.delete_policy(namespace, policy_id)
            emit_changed(uow, namespace)
            await uow.commit()

    async def list_policies(
        self,
        *,
        principal: Principal,
        namespace: str,
        query: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Policy]:
        """Policies by name; `query` matches a part of the name."""
        await self._authorize(principal, namespace, "iam.policy.list", "iam:policy/*")
        size, after = validate_limit(limit), decode_cursor(cursor)
        await self._require_namespace(principal, namespace)
        # The root policy follows namespace creation by an event; never list a namespace without.
        await self.ensure_root_policy(namespace=namespace)
        async with self._uow(write=False) as uow:
            found = await IamRepository(uow.connection).policies(
                namespace, query=query, after=after, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda p: p.name)

    async def ensure_root_policy(self, *, namespace: str) -> Policy:
        """The built-in root policy of a namespace (all actions, all resources), made once."""
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            existing = await repository.policy_by_name(namespace, model.ROOT_POLICY)
            created = (
                None
                if namespace == GLOBAL_NAMESPACE
                else await self._namespaces.created_at(namespace)
            )
            if existing is not None and (created is None or existing.created_at >= created):
                return existing
            if existing is not None:
                # Left by a deleted namespace of the same name whose purge has not run yet.
                await repository.delete_policy(namespace, existing.id)
            now = utcnow()
            root = Policy(
                namespace=namespace,
                id=new_id(),
                name=model.ROOT_POLICY,
                description="Every action on every resource"
                + (" in every namespace" if namespace == GLOBAL_NAMESPACE else ""),
                resources=("*",),
                actions=("*",),
                namespace_independent=namespace == GLOBAL_NAMESPACE,
                builtin=True,
                created_at=now,
                updated_at=now,
            )
            if not await repository.add_policy(root):
                raced = await repository.policy_by_name(namespace, model.ROOT_POLICY)
                assert raced is not None
                return raced
            await uow.commit()
        return root

    # --- roles ----------------------------------------------------------------------------

    async def create_role(
        self,
        *,
        principal: Principal,
        namespace: str,
        name: str,
        policies: Sequence[str] = (),
        description: str = "",
    ) -> Role:
        """A new role made of policies of this namespace or global."""
        await self._authorize(principal, namespace, "iam.role.create", "iam:role/*")
        await self._require_namespace(principal, namespace)
        now = utcnow()
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            role = Role(
                namespace=namespace,
                id=new_id(),
                name=model.check_name(name),
                description=model.check_description(description),
                policies=await attach_refs(
                    repository,
                    namespace,
                    policies,
                    "policy",
                    authorize=self._attach_check(principal, "policy"),
                ),
                created_at=now,
                updated_at=now,
            )
            if not await repository.add_role(role):
                raise Conflict(f"a role named {name!r} already exists in {namespace!r}")
            await uow.commit()
        return role

    async def get_role(self, *, principal: Principal, namespace: str, role_id: str) -> Role:
        """One role, or `NotFound`."""
        await self._authorize(principal, namespace, "iam.role.get", f"iam:role/{role_id}")
        async with self._uow(write=False) as uow:
            role = await IamRepository(uow.connection).role(namespace, role_id)
        if role is None:
            raise NotFound(f"role {role_id!r} does not exist in {namespace!r}")
        return role

    async def update_role(
        self,
        *,
        principal: Principal,
        namespace: str,
        role_id: str,
        name: str | None = None,
        description: str | None = None,
        policies: Sequence[str] | None = None,
    ) -> Role:
        """Rename a role, or replace its policies; holders are re-evaluated."""
        await self._authorize(principal, namespace, "iam.role.update", f"iam:role/{role_id}")
        async with self._uow() as uow:
            repository = IamRepository(uow.connection)
            current = await repository.role(namespace, role_id)
            if current is None:
                raise NotFound(f"role {role_id!r} does not exist in {namespace!r}")
            changed = Role(
                namespace=namespace,
                id=role_id,
                name=current.name if name is None else model.check_name(name),
                description=(
                    current.description
                    if description is None
                    else model.check_description(description)
                ),
                policies=(
                    current.policies
                    if policies is None
                    else await attach_refs(
                        repository,
                        namespace,
                        policies,
                        "policy",
                        authorize=self._attach_check(principal, "policy"),
                    )
                ),
                created_at=current.created_at,
                updated_at=utcnow(),
            )
            if not await repository.update_role(changed):
                raise Conflict(f"a role named {changed.name!r} already exists in {namespace!r}")
            emit_changed(uow, namespace)
            await uow.commit()
        return changed

    async def delete_role(self, *, principal: Principal, namespace: str, role_id: str) -> None:
        """Delete a role and detach it from every identity; idempotent."""
        await self._authorize(principal, namespace, "iam.role.delete", f"iam:role/{role_id}")
        async with self._uow() as uow:
            if await IamRepository(uow.connection).delete_role(namespace, role_id):
                emit_changed(uow, namespace)
            await uow.commit()

    async def list_roles(
        self,
        *,
        principal: Principal,
        namespace: str,
        query: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Role]:
        """Roles by name."""
        await self._authorize(principal, namespace, "iam.role.list", "iam:role/*")
        size, after = validate_limit(limit), decode_cursor(cursor)
        async with self._uow(write=False) as uow:
            found = await IamRepository(uow.connection).roles(
                namespace, query=query, after=after, limit=size + 1
            )
        return page_of(found, limit=size, key_of=lambda r: r.name)

    async def purge_namespace(self, event: Event) -> None:
        """Delete every policy, role and identity of a deleted namespace."""
        async with self._uow() as uow:
            await IamRepository(uow.connection).purge(
                event.namespace, created_before=event.occurred_at
            )
            await CredentialRepository(uow.connection).purge(
                event.namespace, created_before=event.occurred_at
            )
            emit_changed(uow, event.namespace)
            await uow.commit()

    async def on_namespace_created(self, event: Event) -> None:
        """Give every new namespace its built-in root policy."""
        await self.ensure_root_policy(namespace=event.namespace)

    def _attach_check(self, principal: Principal, kind: str) -> Callable[[Ref], Awaitable[None]]:
        return attach_check(self._access, principal, kind)

    async def _require_namespace(self, principal: Principal, namespace: str) -> None:
        if namespace != GLOBAL_NAMESPACE:
            await self._namespaces.lookup(name=namespace)

    async def _authorize(
        self, principal: Principal, namespace: str, action: str, resource: str
    ) -> None:
        await self._access.require(principal, namespace=namespace, action=action, resource=resource)


def _patterns(values: Sequence[str], field: str, validate: Any) -> tuple[str, ...]:
    if not values:
        raise InvalidInput.field((field,), "must list at least one pattern ('*' for all)")
    if len(values) > model.MAX_PATTERNS:
        raise InvalidInput.field((field,), f"must list at most {model.MAX_PATTERNS} patterns")
    return tuple(dict.fromkeys(validate(value, loc=(field, i)) for i, value in enumerate(values)))


async def attach_refs(
    repository: IamRepository,
    namespace: str,
    ids: Sequence[str],
    kind: str,
    *,
    authorize: Callable[[Ref], Awaitable[None]],
) -> tuple[Ref, ...]:
    """Resolve attached ids to refs: 422 for unknown ones or other tenants'; attaching any
    policy or role needs `iam.<kind>.attach` on it, in its namespace (`authorize`), so nobody
    hands themselves rights they could not grant (a namespace root cannot take global root)."""
    field = "policies" if kind == "policy" else "roles"
    located = await repository.locate(iam_policies if kind == "policy" else iam_roles, ids)
    refs = []
    for index, item_id in enumerate(ids):
        owner = located.get(item_id)
        if owner is None or owner not in (namespace, GLOBAL_NAMESPACE):
            # The same answer for another tenant's id as for none: names of others stay secret.
            raise InvalidInput.field(
                (field, index),
                f"{kind} {item_id!r} does not exist in {namespace!r} or 'global'",
            )
        ref = Ref(owner, item_id)
        # Every attachment is authorized, in the attached object's namespace: holding
        # `iam.identity.update` on yourself must not be enough to take `root`.
        await authorize(ref)
        refs.append(ref)
    return tuple(dict.fromkeys(refs))


def attach_check(
    access: Access, principal: Principal, kind: str
) -> Callable[[Ref], Awaitable[None]]:
    """The check that `principal` may attach a policy or role of another (global) namespace."""

    async def check(ref: Ref) -> None:
        await access.require(
            principal,
            namespace=ref.namespace,
            action=f"iam.{kind}.attach",
            resource=f"iam:{kind}/{ref.id}",
        )

    return check


def emit_changed(uow: UnitOfWork, namespace: str, identity_id: str | None = None) -> None:
    """Tell every replica that access in `namespace` changed (they drop cached decisions)."""
    payload = {} if identity_id is None else {"identity": identity_id}
    uow.emit(Event(namespace=namespace, service=EVENT_SERVICE, name="changed", payload=payload))

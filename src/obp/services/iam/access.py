"""Authentication of bearer tokens and authorization of every request, cached per identity."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from obp.kernel.auth import Principal
from obp.kernel.errors import Forbidden, Unauthorized
from obp.kernel.events import Event
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.ports import AuditTrail, Cache, UnitOfWorkFactory
from obp.services.iam.authz import Authorizer, Decision, Grant
from obp.services.iam.model import blocked_key
from obp.services.iam.repository import IamRepository
from obp.services.iam.service import EVENT_SERVICE
from obp.services.iam.tokens import TokenVerifier

log = structlog.get_logger("obp.access")


@dataclass(frozen=True, slots=True)
class _Subject:
    active: bool
    authorizer: Authorizer


class AccessControl:
    """Turns tokens into principals and answers (namespace, action, resource) questions.

    Each identity's grants are compiled once and cached in this process; any IAM change emits
    `<ns>.iam.changed`, on which every replica drops what it cached for that namespace (all of
    it for `global`, whose policies reach everywhere). Blocking also writes a key to the shared
    cache (see `IdentityService`), checked on every request, so it holds on every replica before
    the event arrives.
    """

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        verifier: TokenVerifier,
        cache: Cache,
        audit: AuditTrail,
        cache_size: int = 10_000,
    ) -> None:
        self._uow = unit_of_work
        self._audit = audit
        self._verifier = verifier
        self._cache = cache
        self._size = cache_size
        self._subjects: OrderedDict[tuple[str, str], _Subject] = OrderedDict()
        self._namespace_created: Callable[[str], Awaitable[datetime | None]] | None = None
        self._epoch = 0

    def bind(self, namespace_created: Callable[[str], Awaitable[datetime | None]]) -> None:
        """How to learn when a namespace was created (None if it does not exist).

        Bound after construction: the namespace service itself is authorized through here.
        """
        self._namespace_created = namespace_created

    async def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; `Unauthorized` if it no longer may act."""
        claims = await self._verifier.verify(token)
        subject = await self._subject(claims.namespace, claims.identity_id)
        if subject is None:
            raise Unauthorized("the identity of this token no longer exists")
        blocked = await self._cache.get(blocked_key(claims.namespace, claims.identity_id))
        if not subject.active or blocked is not None:
            raise Unauthorized("this identity is blocked")
        return Principal(namespace=claims.namespace, identity=claims.identity_id, name=claims.name)

    async def require(
        self, principal: Principal, *, namespace: str, action: str, resource: str
    ) -> None:
        """Return if allowed, else audit the denial and raise `Forbidden`."""
        decision = await self.decide(
            principal, namespace=namespace, action=action, resource=resource
        )
        if not decision.allowed:
            own = principal.namespace in (namespace, GLOBAL_NAMESPACE)
            self._audit.record(
                namespace=namespace,
                # Another tenant's caller is not named to this one (its logins are its own).
                actor=f"{principal.namespace}/{principal.identity}" if own else "another namespace",
                action=action[:128],
                resource=resource[:512],
                outcome="denied",
                detail={"name": principal.name} if own else {},
            )
            if not own:
                # The caller's own operators see the attempt in full.
                self._audit.record(
                    namespace=principal.namespace,
                    actor=f"{principal.namespace}/{principal.identity}",
                    action=action[:128],
                    resource=resource[:512],
                    outcome="denied",
                    detail={"name": principal.name, "target_namespace": namespace},
                )
            raise Forbidden(
                f"{principal.name!r} may not {action} on {resource} in namespace {namespace!r}"
            )

    async def decide(
        self, principal: Principal, *, namespace: str, action: str, resource: str
    ) -> Decision:
        """The decision, without raising."""
        subject = await self._subject(principal.namespace, principal.identity)
        if subject is None or not subject.active:
            return Decision(False, action, resource, namespace)
        return subject.authorizer.decide(namespace=namespace, action=action, resource=resource)

    async def decide_many(
        self, principal: Principal, items: Sequence[tuple[str, str, str]]
    ) -> list[Decision]:
        """Decisions for (namespace, action, resource) triples."""
        return [
            await self.decide(principal, namespace=ns, action=action, resource=resource)
            for ns, action, resource in items
        ]

    async def check(
        self,
        *,
        principal: Principal,
        namespace: str,
        items: Sequence[tuple[str | None, str, str]],
        identity_id: str | None = None,
    ) -> list[Decision]:
        """Batch decisions for the caller, or for `identity_id` of `namespace` if allowed to ask.

        Each item is (namespace or None for the request's namespace, action, resource).
        """
        subject = principal
        if identity_id is not None:
            await self.require(
                principal,
                namespace=namespace,
                action="iam.authz.check",
                resource=f"iam:identity/{identity_id}",
            )
            subject = Principal(namespace=namespace, identity=identity_id, name=identity_id)
        return await self.decide_many(
            subject,
            [(item_ns or namespace, action, resource) for item_ns, action, resource in items],
        )

    def committed(self, events: Sequence[Event]) -> None:
        """Forget at once in this process what an IAM change committed here altered."""
        for event in events:
            if event.service == EVENT_SERVICE and event.name == "changed":
                self._forget(event)

    async def forget(self, event: Event) -> None:
        """Drop cached grants an IAM change may have altered (on every replica, by the bus)."""
        self._forget(event)

    def _forget(self, event: Event) -> None:
        # A load that began before this change must not cache what it read (see _subject).
        self._epoch += 1
        if event.namespace == GLOBAL_NAMESPACE and event.service == EVENT_SERVICE:
            # Global policies reach identities of every namespace.
            self._subjects.clear()
            return
        for key in [key for key in self._subjects if key[0] == event.namespace]:
            del self._subjects[key]

    async def _member(self, namespace: str, identity_created: datetime) -> bool:
        """Whether the identity belongs to the namespace as it exists now: an identity of a
        deleted namespace whose name was taken again (before the purge ran) does not."""
        if namespace == GLOBAL_NAMESPACE or self._namespace_created is None:
            return True
        created = await self._namespace_created(namespace)
        return created is not None and identity_created >= created

    async def _subject(self, namespace: str, identity_id: str) -> _Subject | None:
        key = (namespace, identity_id)
        cached = self._subjects.get(key)
        if cached is not None:
            self._subjects.move_to_end(key)
            return cached
        epoch = self._epoch
        async with self._uow(write=False) as uow:
            repository = IamRepository(uow.connection)
            identity = await repository.identity(namespace, identity_id)
            if identity is None or not await self._member(identity.namespace, identity.created_at):
                return None
            policies = await repository.effective_policies(identity)
        grants = [
            Grant(
                namespace=p.namespace,
                actions=p.actions,
                resources=p.resources,
                namespace_independent=p.namespace_independent,
            )
            for p in policies
        ]
        subject = _Subject(active=identity.active, authorizer=Authorizer(grants))
        if epoch != self._epoch:
            return subject  # an IAM change landed while loading: answer, but do not keep it
        self._subjects[key] = subject
        while len(self._subjects) > self._size:
            self._subjects.popitem(last=False)
        return subject

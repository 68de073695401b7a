"""The caller of a use case, passed explicitly to every service method, and the access port."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an identity of a namespace, authenticated by a token."""

    namespace: str
    identity: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)


class Access(Protocol):
    """Decides whether a principal may do `action` on `resource` in `namespace`."""

    async def require(
        self, principal: Principal, *, namespace: str, action: str, resource: str
    ) -> None:
        """Return if allowed, else raise `Forbidden` naming the action and resource."""
        ...

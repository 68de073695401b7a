"""Callers for service-level tests, where no HTTP request carries a token."""

from __future__ import annotations

from obp.kernel.auth import Principal

OPERATOR = Principal(namespace="global", identity="test-operator", name="test-operator")

# The global admin every test server starts with.
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "test-admin-password-0001"


class AllowAll:
    """An access port that allows everything: for tests of other rules than authorization."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, str, str, str]] = []

    async def require(
        self, principal: Principal, *, namespace: str, action: str, resource: str
    ) -> None:
        """Record the question and allow it."""
        self.checked.append((principal.identity, namespace, action, resource))


class Trail:
    """An audit trail that keeps records in memory, for service-level tests."""

    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def record(
        self,
        *,
        namespace: str,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Keep the record."""
        self.records.append(
            {
                "namespace": namespace,
                "actor": actor,
                "action": action,
                "resource": resource,
                "outcome": outcome,
                "detail": dict(detail or {}),
            }
        )

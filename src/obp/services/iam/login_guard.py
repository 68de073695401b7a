"""The token endpoint's guard: the login throttle and the audit records of refused grants.

Every failed password or client-credentials grant counts towards its login's throttle, known
login or not, so neither a 429 nor its Retry-After tells whether a login exists. Each refusal
is an audit record naming the namespace, the reason and the identity id when known, otherwise
a digest of the login; never a password, token or key.
"""

from __future__ import annotations

import math
from typing import Any

from obp.kernel.errors import TooManyRequests
from obp.kernel.ports import AuditTrail
from obp.services.iam.throttle import LoginThrottle


class Throttled(TooManyRequests):
    """Too many failed attempts for this login or client: retry after `retry_after` seconds."""


class LoginGuard:
    """Throttles the logins of the token endpoint and records its refusals."""

    def __init__(self, *, throttle: LoginThrottle, audit: AuditTrail) -> None:
        self._throttle = throttle
        self._trail = audit

    async def check(self, namespace: str, login: str) -> None:
        """`Throttled` while the login is locked after repeated failures."""
        wait = await self._throttle.check(namespace=namespace, login=login)
        if wait is not None:
            retry_after = max(1, math.ceil(wait))
            self._trail.record(
                namespace=namespace,
                actor=self._login_digest(namespace, login),
                action="iam.token",
                resource="iam:token",
                outcome="throttled",
                detail={"retry_after": retry_after},
            )
            raise Throttled(
                f"too many failed attempts; retry in {retry_after} seconds",
                retry_after=retry_after,
            )

    async def succeeded(self, *, namespace: str, login: str) -> None:
        """A successful login forgets the login's failures."""
        await self._throttle.succeeded(namespace=namespace, login=login)

    async def failed(
        self,
        *,
        grant: str,
        namespace: str,
        login: str,
        identity_id: str | None,
        reason: str,
        client_id: str | None = None,
    ) -> None:
        """Count a failed login towards its throttle and record the refusal."""
        locked_for = await self._throttle.failed(namespace=namespace, login=login)
        fields: dict[str, Any] = {}
        if client_id is not None:
            fields["client_id"] = client_id
        if locked_for is not None:
            fields["locked_for"] = math.ceil(locked_for)
        self.refused(
            grant=grant,
            namespace=namespace,
            identity_id=identity_id,
            login_digest=None if identity_id else self._login_digest(namespace, login),
            reason=reason,
            **fields,
        )

    def refused(
        self,
        *,
        grant: str,
        namespace: str,
        reason: str,
        identity_id: str | None = None,
        login_digest: str | None = None,
        **fields: Any,
    ) -> None:
        """Record a refused grant (without counting it towards a throttle)."""
        if identity_id is not None:
            fields["identity"] = identity_id
        if login_digest is not None:
            fields["login_digest"] = login_digest
        self._trail.record(
            namespace=namespace,
            actor=str(fields.get("identity") or fields.get("login_digest") or "unknown"),
            action=f"iam.token.{grant}",
            resource="iam:token",
            outcome="failed",
            detail={"reason": reason, **fields},
        )

    def _login_digest(self, namespace: str, login: str) -> str:
        """A short digest of the login for the log (keyed, when the throttle has a key)."""
        return self._throttle.key(namespace=namespace, login=login).rsplit(":", 1)[-1][:16]

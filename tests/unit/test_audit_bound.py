"""The audit trail's background writes are bounded, so a flood cannot exhaust memory."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import pytest

from obp.services.audit import service as audit_module
from obp.services.audit.service import AuditService


class _SlowUnitOfWork:
    """A unit of work that never finishes opening: every write stays pending."""

    def __init__(self, gate: asyncio.Event) -> None:
        self._gate = gate

    async def __aenter__(self) -> Self:
        await self._gate.wait()
        raise RuntimeError("closed")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


async def test_records_beyond_the_bound_are_dropped_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit_module, "MAX_PENDING", 10)
    gate = asyncio.Event()
    trail = AuditService(unit_of_work=lambda write=True: _SlowUnitOfWork(gate))  # type: ignore[arg-type]
    for _ in range(audit_module.MAX_PENDING + 25):
        trail.record(
            namespace="acme", actor="x", action="kv.get", resource="kv:a", outcome="denied"
        )
    assert trail.dropped == 25
    gate.set()
    await trail.flush()

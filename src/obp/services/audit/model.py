"""An audit record (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Something a namespace's operators may need to see later: a refusal, a failed login."""

    namespace: str
    id: str
    at: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)

"""Storage usage: what a namespace holds in a service, shown on the namespace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Usage:
    """How many objects, and how many bytes, a namespace stores in one service."""

    count: int
    bytes: int


class UsageSource(Protocol):
    """A service that can tell how much one incarnation of a namespace stores in it."""

    async def usage(self, *, namespace: str, since: datetime) -> Usage:
        """Count and bytes of what the namespace created since `since` holds."""
        ...

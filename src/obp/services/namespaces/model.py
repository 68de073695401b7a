"""The namespace: one tenant of the platform, identified by a DNS-label name."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from obp.kernel.errors import InvalidInput

MAX_FULL_NAME = 200
MAX_DESCRIPTION = 2000


@dataclass(frozen=True, slots=True)
class Namespace:
    """A tenant: every row, blob, key and schedule of it carries its name."""

    name: str
    full_name: str
    description: str
    created_at: datetime
    updated_at: datetime

    def changed(self, *, full_name: str | None, description: str | None, at: datetime) -> Namespace:
        """A copy with the given fields replaced (None keeps the current value)."""
        return replace(
            self,
            full_name=self.full_name if full_name is None else check_full_name(full_name),
            description=self.description if description is None else check_description(description),
            updated_at=at,
        )


def check_full_name(value: str) -> str:
    """Return a valid display name or raise `InvalidInput`."""
    if len(value) > MAX_FULL_NAME or any(ord(c) < 32 for c in value):
        raise InvalidInput.field(
            ("full_name",), f"must be at most {MAX_FULL_NAME} characters without control characters"
        )
    return value


def check_description(value: str) -> str:
    """Return a valid description or raise `InvalidInput`."""
    if len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise InvalidInput.field(
            ("description",), f"must be at most {MAX_DESCRIPTION} characters without NUL"
        )
    return value

"""Secrets: named values a tenant keeps sealed, each write a new version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from obp.kernel.errors import InvalidInput

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
MAX_VALUE_BYTES = 64 * 1024
MAX_DESCRIPTION = 1000
_NAME_RE = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One stored version of a secret, its value still sealed."""

    namespace: str
    name: str
    version: int
    description: str
    value_sealed: bytes
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret as callers see it: metadata, and the value when they asked for it."""

    name: str
    version: int
    description: str
    updated_at: datetime
    value: str | None = None


def check_name(name: str) -> str:
    """Return a valid secret name or raise `InvalidInput` naming the pattern."""
    if not _NAME_RE.fullmatch(name):
        shown = name if len(name) <= 70 else name[:64] + "..."
        raise InvalidInput.field(
            ("name",),
            f"{shown!r} is not a valid secret name: 1-128 letters, digits, '_', '.' or '-', "
            f"not starting with '.' or '-' (pattern {NAME_PATTERN})",
        )
    return name


def check_value(value: str) -> bytes:
    """The value as UTF-8 bytes, or `InvalidInput` if it is too large."""
    data = value.encode()
    if len(data) > MAX_VALUE_BYTES:
        raise InvalidInput.field(("value",), f"must be at most {MAX_VALUE_BYTES} bytes of UTF-8")
    return data


def check_description(description: str) -> str:
    """Return a valid description or raise `InvalidInput`."""
    if len(description) > MAX_DESCRIPTION or "\x00" in description:
        raise InvalidInput.field(
            ("description",), f"must be at most {MAX_DESCRIPTION} characters without NUL"
        )
    return description


def value_aad(name: str) -> bytes:
    """What a sealed value is bound to: copied under another secret's name, it won't unseal."""
    return b"secret\x00" + name.encode()

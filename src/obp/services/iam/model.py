"""IAM entities and their invariants: policies, roles, identities (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obp.kernel.errors import InvalidInput
from obp.kernel.names import GLOBAL_NAMESPACE

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}$"
MAX_DESCRIPTION = 1000
MAX_PATTERNS = 100
ROOT_POLICY = "root"
_NAME_RE = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class Ref:
    """A policy or role, by namespace and id (it may live in the same namespace or in global)."""

    namespace: str
    id: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Grants `actions` on `resources` in its namespace (or everywhere, if global and marked)."""

    namespace: str
    id: str
    name: str
    description: str
    resources: tuple[str, ...]
    actions: tuple[str, ...]
    namespace_independent: bool
    builtin: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of policies."""

    namespace: str
    id: str
    name: str
    description: str
    policies: tuple[Ref, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """Who can log in: a person or a service account, with policies and roles attached."""

    namespace: str
    id: str
    name: str
    active: bool
    metadata: dict[str, Any]
    policies: tuple[Ref, ...]
    roles: tuple[Ref, ...]
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)


def check_name(value: str, *, loc: tuple[str | int, ...] = ("name",)) -> str:
    """Return a valid policy, role or identity name, or raise `InvalidInput` naming the pattern."""
    if not _NAME_RE.fullmatch(value):
        shown = value if len(value) <= 70 else value[:64] + "..."
        raise InvalidInput.field(
            loc,
            f"{shown!r} is not a valid name: 1-128 letters, digits or _ . @ + -, "
            f"not starting with . @ + - (pattern {NAME_PATTERN})",
        )
    return value


def check_description(value: str) -> str:
    """Return a valid description or raise `InvalidInput`."""
    if len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise InvalidInput.field(
            ("description",), f"must be at most {MAX_DESCRIPTION} characters without NUL"
        )
    return value


def check_scope(*, namespace: str, namespace_independent: bool) -> None:
    """Only global policies may grant in every namespace."""
    if namespace_independent and namespace != GLOBAL_NAMESPACE:
        raise InvalidInput.field(
            ("namespace_independent",),
            "only policies in the global namespace can be namespace-independent",
        )


def blocked_key(namespace: str, identity_id: str) -> str:
    """The shared-cache key that marks an identity blocked for every replica at once."""
    return f"{namespace}:iam:blocked:{identity_id}"

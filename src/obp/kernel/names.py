"""Namespace names: DNS labels, with a few reserved for the platform itself."""

from __future__ import annotations

import re

from obp.kernel.errors import InvalidInput

NAMESPACE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
GLOBAL_NAMESPACE = "global"
SYSTEM_NAMESPACE = "system"
RESERVED_NAMESPACES = frozenset({GLOBAL_NAMESPACE, SYSTEM_NAMESPACE})

_NAMESPACE_RE = re.compile(NAMESPACE_PATTERN)


def is_valid_namespace_name(name: str) -> bool:
    """Whether `name` is a syntactically valid namespace name (reserved or not)."""
    return _NAMESPACE_RE.fullmatch(name) is not None


def validate_new_namespace_name(name: str, *, loc: tuple[str | int, ...] = ("name",)) -> str:
    """Return `name` if a tenant may create a namespace with it, else raise `InvalidInput`."""
    if not is_valid_namespace_name(name):
        shown = name if len(name) <= 70 else name[:64] + "..."
        raise InvalidInput.field(
            loc,
            f"{shown!r} is not a valid namespace name: use 1-63 lowercase letters, digits "
            f"or '-', starting and ending with a letter or digit (pattern {NAMESPACE_PATTERN})",
        )
    if name in RESERVED_NAMESPACES:
        raise InvalidInput.field(
            loc,
            f"{name!r} is reserved for the platform; reserved names are "
            f"{', '.join(sorted(RESERVED_NAMESPACES))}",
        )
    return name

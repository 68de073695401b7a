"""Namespace request and response bodies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from obp.kernel.names import NAMESPACE_PATTERN
from obp.kernel.usage import Usage
from obp.services.namespaces.model import MAX_DESCRIPTION, MAX_FULL_NAME, Namespace


class NamespaceCreate(BaseModel):
    """Create a namespace; the name is a DNS label and cannot change later."""

    model_config = ConfigDict(extra="forbid")

    # Length and pattern are checked by the service, whose message names the accepted pattern.
    name: str = Field(
        description=f"DNS label, pattern {NAMESPACE_PATTERN}; 'global' and 'system' are reserved",
        examples=["acme"],
    )
    full_name: str = Field(default="", max_length=MAX_FULL_NAME, examples=["ACME Corporation"])
    description: str = Field(default="", max_length=MAX_DESCRIPTION)


class NamespaceUpdate(BaseModel):
    """Change the display name or description; omitted fields keep their values."""

    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(default=None, max_length=MAX_FULL_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class StorageUsage(BaseModel):
    """How many objects and bytes a namespace stores in one service."""

    count: int
    bytes: int


class NamespaceRead(BaseModel):
    """A namespace as the API returns it; `usage` only when one namespace is read."""

    name: str
    full_name: str
    description: str
    created_at: datetime
    updated_at: datetime
    # Only reading one namespace reports it; other answers leave the field out entirely.
    usage: dict[str, StorageUsage] | None = Field(
        default=None,
        description="Per storage service (files, kv): object count and bytes",
        exclude_if=lambda value: value is None,
    )

    @classmethod
    def of(cls, namespace: Namespace, usage: Mapping[str, Usage] | None = None) -> NamespaceRead:
        """The public view of a namespace."""
        return cls(
            name=namespace.name,
            full_name=namespace.full_name,
            description=namespace.description,
            created_at=namespace.created_at,
            updated_at=namespace.updated_at,
            usage=None
            if usage is None
            else {k: StorageUsage(count=u.count, bytes=u.bytes) for k, u in usage.items()},
        )


class NamespacePage(BaseModel):
    """One page of namespaces."""

    items: list[NamespaceRead]
    next_cursor: str | None

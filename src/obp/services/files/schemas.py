"""File response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from obp.services.files.model import FileRecord


class FileStat(BaseModel):
    """A file's metadata as the API returns it."""

    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    metadata: dict[str, Any]
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, record: FileRecord) -> FileStat:
        """The public view of a file record."""
        return cls(
            id=record.id,
            name=record.name,
            content_type=record.content_type,
            size=record.size,
            sha256=record.sha256,
            metadata=record.metadata,
            created_at=record.created_at,
            created_by=record.created_by,
        )


class FilePage(BaseModel):
    """One page of files."""

    items: list[FileStat]
    next_cursor: str | None

"""Key-value response bodies (values themselves travel as raw bytes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from obp.services.kv.model import KvEntry


class KvWritten(BaseModel):
    """What a PUT stored: never the value itself."""

    key: str
    etag: str = Field(description="Strong entity tag of the content, for If-Match")
    size: int = Field(description="Bytes of the value")
    content_type: str
    version: int = Field(description="Goes up by one on every write and delete of the key")
    expires_at: datetime | None = Field(description="When the value expires (X-OBP-TTL)")

    @classmethod
    def of(cls, entry: KvEntry) -> KvWritten:
        """The metadata of a stored value."""
        return cls(
            key=entry.key,
            etag=entry.etag,
            size=entry.size,
            content_type=entry.content_type,
            version=entry.version,
            expires_at=entry.expires_at,
        )


class KvItem(KvWritten):
    """One key of a listing, with its metadata."""

    updated_at: datetime

    @classmethod
    def item(cls, entry: KvEntry) -> KvItem:
        """The listing view of a stored value."""
        assert entry.updated_at is not None
        return cls(**KvWritten.of(entry).model_dump(), updated_at=entry.updated_at)


class KvPage(BaseModel):
    """One page of keys, in code point order."""

    items: list[KvItem]
    next_cursor: str | None

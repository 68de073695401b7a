"""What an upload carries besides its bytes, and the stream that hashes and counts them."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from obp.kernel.errors import PayloadTooLarge


@dataclass(slots=True)
class UploadFields:
    """Name, content type and metadata of an upload; a multipart form may fill them late."""

    name: str | None = None
    content_type: str | None = None
    metadata: str | None = None
    # Where each field came from, so a problem names the header or form field.
    locations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def loc(self, name: str) -> tuple[str, ...]:
        """The request location of field `name`."""
        return self.locations.get(name, ("body", name))


class HashingStream:
    """Passes chunks through, computing SHA-256 and size, refusing more than `limit` bytes."""

    def __init__(self, chunks: AsyncIterator[bytes], *, limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of what passed so far."""
        return self._digest.hexdigest()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > self._limit:
                raise PayloadTooLarge(f"a file may hold at most {self._limit} bytes")
            self._digest.update(chunk)
            yield chunk

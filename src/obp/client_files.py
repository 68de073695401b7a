"""The files part of the SDK: streamed uploads and downloads, never whole in memory."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from obp.client_paths import segment

if TYPE_CHECKING:
    from obp.client import Client

CHUNK = 1024 * 1024


class FilesApi:
    """`/api/v1/namespaces/{ns}/files`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _path(self, namespace: str, *parts: str) -> str:
        base = f"/api/v1/namespaces/{quote(namespace, safe='')}/files"
        return "/".join([base, *(segment(part) for part in parts)])

    def put(
        self,
        namespace: str,
        source: BinaryIO | Path,
        *,
        name: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload a file from a path or a binary stream; its stat (id, size, sha256, ...)."""
        if isinstance(source, Path):
            with source.open("rb") as stream:
                return self.put(
                    namespace,
                    stream,
                    name=name or source.name,
                    content_type=content_type or mimetypes.guess_type(source.name)[0],
                    metadata=metadata,
                )
        headers = {
            "X-OBP-File-Name": quote(name or "upload", safe=""),
            "Content-Type": content_type or "application/octet-stream",
        }
        if metadata is not None:
            headers["X-OBP-Metadata"] = json.dumps(metadata)
        response = self._client.request(
            "POST", self._path(namespace), content=_chunks(source), headers=headers
        )
        return dict(response.json())

    def stat(self, namespace: str, file_id: str) -> dict[str, Any]:
        """Size, sha256, name, content type, metadata and created_at of a file."""
        return dict(self._client.request("GET", self._path(namespace, file_id, "stat")).json())

    def download(
        self,
        namespace: str,
        file_id: str,
        target: BinaryIO,
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        """Write a file, or bytes start..end (inclusive) of it, to `target`; the bytes written."""
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = (
                f"bytes={'' if start is None else start}-{'' if end is None else end}"
            )
        written = 0
        with self._client.stream("GET", self._path(namespace, file_id), headers=headers) as answer:
            for chunk in answer.iter_bytes(CHUNK):
                target.write(chunk)
                written += len(chunk)
        return written

    def delete(self, namespace: str, file_id: str) -> None:
        """Delete a file (idempotent)."""
        self._client.request("DELETE", self._path(namespace, file_id))

    def list(
        self,
        namespace: str,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page: `{"items": [...], "next_cursor": ...}`."""
        return self._client.page(self._path(namespace), prefix=prefix, limit=limit, cursor=cursor)

    def iterate(self, namespace: str, *, prefix: str | None = None) -> Iterator[dict[str, Any]]:
        """Every file's stat, following cursors."""
        return self._client.every(self._path(namespace), prefix=prefix)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk

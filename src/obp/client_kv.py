"""The key-value part of the SDK: raw bytes under keys, with entity tags and TTLs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from obp.client_paths import segment

if TYPE_CHECKING:
    import httpx

    from obp.client import Client


@dataclass(frozen=True)
class KvValue:
    """A value as GET returns it: the bytes and the headers that describe them."""

    key: str
    value: bytes
    content_type: str
    etag: str
    expires_at: str | None


class KvApi:
    """`/api/v1/namespaces/{ns}/kv`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _path(self, namespace: str, key: str | None = None) -> str:
        base = f"/api/v1/namespaces/{quote(namespace, safe='')}/kv"
        if key is None:
            return base
        return f"{base}/{segment(key)}"

    def set(
        self,
        namespace: str,
        key: str,
        value: bytes | str,
        *,
        content_type: str | None = None,
        ttl: int | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> dict[str, Any]:
        """Store `value` (str as UTF-8); `{key, etag, size, content_type, version, expires_at,
        created}`. `if_match`: only over that etag; `if_absent`: only if the key has none."""
        headers = {"Content-Type": content_type or _default_type(value)}
        if ttl is not None:
            headers["X-OBP-TTL"] = str(ttl)
        if if_match is not None:
            headers["If-Match"] = if_match
        if if_absent:
            headers["If-None-Match"] = "*"
        data = value.encode() if isinstance(value, str) else value
        response = self._client.request(
            "PUT", self._path(namespace, key), content=data, headers=headers
        )
        return {**response.json(), "created": response.status_code == 201}

    def get(self, namespace: str, key: str, *, if_none_match: str | None = None) -> KvValue | None:
        """The value; None when `if_none_match` names the current etag (304)."""
        headers = {} if if_none_match is None else {"If-None-Match": if_none_match}
        response = self._client.request("GET", self._path(namespace, key), headers=headers)
        if response.status_code == 304:
            return None
        return KvValue(key=key, value=response.content, **_described(response))

    def head(self, namespace: str, key: str) -> dict[str, Any]:
        """Content type, size, etag and expiry, without the bytes."""
        response = self._client.request("HEAD", self._path(namespace, key))
        return {
            "key": key,
            "size": int(response.headers["content-length"]),
            **_described(response),
        }

    def delete(self, namespace: str, key: str, *, if_match: str | None = None) -> None:
        """Delete the key (idempotent); with `if_match` only if its etag still is that."""
        headers = {} if if_match is None else {"If-Match": if_match}
        self._client.request("DELETE", self._path(namespace, key), headers=headers)

    def list(
        self,
        namespace: str,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of keys and metadata: `{"items": [...], "next_cursor": ...}`."""
        return self._client.page(self._path(namespace), prefix=prefix, limit=limit, cursor=cursor)

    def iterate(self, namespace: str, *, prefix: str | None = None) -> Iterator[dict[str, Any]]:
        """Metadata of every key (starting with `prefix`), following cursors."""
        return self._client.every(self._path(namespace), prefix=prefix)


def _default_type(value: bytes | str) -> str:
    return "text/plain; charset=utf-8" if isinstance(value, str) else "application/octet-stream"


def _described(response: httpx.Response) -> dict[str, Any]:
    return {
        "content_type": response.headers.get("content-type", ""),
        "etag": response.headers.get("etag", ""),
        "expires_at": response.headers.get("x-obp-expires-at"),
    }

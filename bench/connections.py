"""One keep-alive HTTP connection per simulated client: through httpx, or a minimal raw one.

A shared `httpx.AsyncClient` pool costs ~1.5 ms of client CPU per request here, more than the
server spends on a bare endpoint; one client per connection costs less, and the raw HTTP/1.1
client far less, so a 2-core machine can saturate the server rather than the load generator.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal, Protocol

import httpx

ClientKind = Literal["httpx", "raw"]

# What a dropped or refused connection raises, from either kind of connection.
TRANSPORT_ERRORS = (httpx.TransportError, OSError, asyncio.IncompleteReadError, ValueError)

JSON = "application/json"
Headers = tuple[tuple[str, str], ...]


class Connection(Protocol):
    """Sends one request at a time over one connection; answers the status code and body."""

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        headers: Headers = (),
        content_type: str = JSON,
    ) -> tuple[int, bytes]:
        """Send a request (`content_type` describes `body`), read the whole response, return
        its status and body."""
        ...

    async def close(self) -> None:
        """Close the connection."""
        ...


def open_connection(kind: ClientKind, host: str, port: int) -> Connection:
    """A connection of `kind` to `host:port` (it connects on first use)."""
    if kind == "httpx":
        return HttpxConnection(f"http://{host}:{port}")
    return RawConnection(host, port)


class HttpxConnection:
    """An `httpx.AsyncClient` limited to one keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        headers: Headers = (),
        content_type: str = JSON,
    ) -> tuple[int, bytes]:
        """Send a request, read the whole response, return its status and body."""
        sent = dict(headers)
        if body is not None:
            sent["content-type"] = content_type
        response = await self._client.request(method, path, content=body, headers=sent or None)
        return response.status_code, response.content

    async def close(self) -> None:
        """Close the connection."""
        await self._client.aclose()


class RawConnection:
    """Just enough HTTP/1.1 for the benchmark: keep-alive, Content-Length or chunked bodies."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        headers: Headers = (),
        content_type: str = JSON,
    ) -> tuple[int, bytes]:
        """Send a request, read the whole response, return its status and body."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode("ascii") + b"\r\n" + (body or b""))
        try:
            status, content, close = await self._read_response(self._reader)
        except BaseException:
            await self.close()  # a half-read response leaves the stream unusable
            raise
        if close:
            await self.close()
        return status, content

    async def close(self) -> None:
        """Close the connection."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get("transfer-encoding") == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")  # no trailers are sent to us
            content = b"".join(chunks)
        else:
            content = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, content, headers.get("connection") == "close"

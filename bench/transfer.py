"""Large HTTP/1.1 bodies over one keep-alive connection, streamed: a raw socket client or httpx."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import httpx

from bench.connections import ClientKind, Headers

# What the raw client asks of the socket per recv: big enough that per-call cost vanishes.
RECV_BYTES = 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024

Sink = Callable[[memoryview], object]


@dataclass(frozen=True)
class Transfer:
    """One request: status, body bytes moved, seconds to the last byte, the body if kept."""

    status: int
    body_bytes: int
    seconds: float
    content: bytes = b""


class Transfers(Protocol):
    """Sends one request at a time over one keep-alive connection."""

    def download(
        self, path: str, *, headers: Headers = (), sink: Sink | None = None, keep: bool = False
    ) -> Transfer:
        """GET `path`; each piece of the body goes to `sink`, then is dropped unless `keep`."""
        ...

    def upload(
        self, path: str, chunks: Iterable[bytes], *, size: int, headers: Headers = ()
    ) -> Transfer:
        """POST `size` bytes taken from `chunks` (`headers` carry the Content-Type)."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


def open_transfers(kind: ClientKind, host: str, port: int) -> Transfers:
    """A client of `kind` to `host:port` (it connects on first use)."""
    if kind == "httpx":
        return HttpxTransfers(host, port)
    return RawTransfers(host, port)


class RawTransfers:
    """Blocking socket, `recv_into` one reused buffer: next to no CPU per byte on the client."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._sock: socket.socket | None = None
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)
        self._pending = b""  # bytes received past the end of what was read so far

    def download(
        self, path: str, *, headers: Headers = (), sink: Sink | None = None, keep: bool = False
    ) -> Transfer:
        """GET `path`, discarding (or keeping) the body as it arrives."""
        started = time.perf_counter()
        self._send_head("GET", path, headers)
        return self._response(started, sink=sink, keep=keep)

    def upload(
        self, path: str, chunks: Iterable[bytes], *, size: int, headers: Headers = ()
    ) -> Transfer:
        """POST with a Content-Length, then each chunk as it comes; keep the answer."""
        started = time.perf_counter()
        sock = self._send_head("POST", path, (*headers, ("Content-Length", str(size))))
        sent = 0
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
        if sent != size:
            self.close()
            raise ValueError(f"the chunks held {sent} bytes, not the {size} announced")
        return self._response(started, sink=None, keep=True)

    def close(self) -> None:
        """Close the connection."""
        sock, self._sock, self._pending = self._sock, None, b""
        if sock is not None:
            sock.close()

    def _send_head(self, method: str, path: str, headers: Headers) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self._address)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = self._address
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        self._sock.sendall(head.encode("latin-1") + b"\r\n")
        return self._sock

    def _response(self, started: float, *, sink: Sink | None, keep: bool) -> Transfer:
        try:
            status, fields = self._head()
            kept: list[bytes] = []

            def take(piece: memoryview) -> None:
                if sink is not None:
                    sink(piece)
                if keep:
                    kept.append(bytes(piece))

            if fields.get("transfer-encoding", "").lower() == "chunked":
                moved = 0
                while size := int(self._line().split(b";")[0], 16):
                    self._body(size, take)
                    self._line()
                    moved += size
                while self._line():  # trailers, up to the empty line
                    pass
            else:
                moved = int(fields.get("content-length", "0"))
                self._body(moved, take)
        except BaseException:
            self.close()  # a half-read response leaves the connection unusable
            raise
        seconds = time.perf_counter() - started
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Transfer(status, moved, seconds, b"".join(kept))

    def _head(self) -> tuple[int, dict[str, str]]:
        data = self._pending
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD_BYTES:
                raise ValueError("response head too large")
            data += self._recv()
        self._pending = data[end + 4 :]
        lines = data[:end].decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ", 2)[1]), fields

    def _line(self) -> bytes:
        while (end := self._pending.find(b"\r\n")) < 0:
            self._pending += self._recv()
        line, self._pending = self._pending[:end], self._pending[end + 2 :]
        return line

    def _body(self, size: int, take: Callable[[memoryview], None]) -> None:
        if self._pending:
            first, self._pending = self._pending[:size], self._pending[size:]
            take(memoryview(first))
            size -= len(first)
        sock = self._sock
        if sock is None:
            raise ConnectionError("not connected")
        while size > 0:
            got = sock.recv_into(self._view, min(size, RECV_BYTES))
            if not got:
                raise ConnectionError("connection closed mid-body")
            take(self._view[:got])
            size -= got

    def _recv(self) -> bytes:
        if self._sock is None:
            raise ConnectionError("not connected")
        data = self._sock.recv(MAX_HEAD_BYTES)
        if not data:
            raise ConnectionError("connection closed before a response")
        return data


class HttpxTransfers:
    """`httpx.Client` limited to one keep-alive connection; bodies through `iter_raw`."""

    def __init__(self, host: str, port: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.Client(base_url=f"http://{host}:{port}", limits=limits, timeout=120.0)

    def download(
        self, path: str, *, headers: Headers = (), sink: Sink | None = None, keep: bool = False
    ) -> Transfer:
        """GET `path`, discarding (or keeping) the body as it arrives."""
        started = time.perf_counter()
        moved, kept = 0, []
        with self._client.stream("GET", path, headers=dict(headers)) as response:
            for piece in response.iter_raw(RECV_BYTES):
                moved += len(piece)
                if sink is not None:
                    sink(memoryview(piece))
                if keep:
                    kept.append(piece)
        return Transfer(response.status_code, moved, time.perf_counter() - started, b"".join(kept))

    def upload(
        self, path: str, chunks: Iterable[bytes], *, size: int, headers: Headers = ()
    ) -> Transfer:
        """POST the chunks with a Content-Length (so not chunked); keep the answer."""
        started = time.perf_counter()
        sent = {**dict(headers), "Content-Length": str(size)}
        response = self._client.post(path, content=chunks, headers=sent)
        return Transfer(response.status_code, size, time.perf_counter() - started, response.content)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()

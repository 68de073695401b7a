"""Shared by the file scenarios: payload bytes, OBP plus nginx in a scratch folder, figures."""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import psutil

from bench.connections import ClientKind, Headers
from bench.iam import bearer, create_namespace
from bench.nginx import Nginx, nginx_binary
from bench.server import HOST, BenchServer
from bench.transfer import Transfer, Transfers, open_transfers

MIB = 1024 * 1024
CHUNK = MIB  # what uploads and the disk baseline are fed, a chunk at a time
POOL = 16  # distinct random MiB the payload cycles through (making each costs ~2 ms)
NAMESPACE = "bench-files"
OCTETS = "application/octet-stream"
TOKEN_REFRESH_S = 300.0  # well inside the default access token lifetime (600 s)


class Payload:
    """Deterministic bytes, never whole in memory: MiB chunks stamped with a salt and index."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self._pool = [rng.randbytes(CHUNK) for _ in range(POOL)]

    def chunks(self, size: int, *, salt: int = 0) -> Iterator[bytes]:
        """`size` bytes in chunks of `CHUNK` (the last may be shorter)."""
        for index in range(math.ceil(size / CHUNK)):
            stamp = salt.to_bytes(8, "big") + index.to_bytes(8, "big")
            chunk = stamp + self._pool[index % POOL][len(stamp) :]
            yield chunk[: min(CHUNK, size - index * CHUNK)]

    def write(self, path: Path, size: int, *, salt: int = 0) -> str:
        """Write `size` bytes to `path`; their sha256 (hex)."""
        digest = hashlib.sha256()
        with path.open("wb") as out:
            for chunk in self.chunks(size, salt=salt):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()


def file_chunks(path: Path) -> Iterator[bytes]:
    """The bytes of `path`, a chunk at a time."""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


class FileBench:
    """OBP (with `NAMESPACE`) and nginx (serving `www`) in a scratch folder removed on exit."""

    def __init__(self, label: str, client: ClientKind) -> None:
        nginx_binary()  # fail before any work when nginx is missing
        self.client = client
        self._tmp = Path(tempfile.mkdtemp(prefix=f"obp-bench-{label}-"))
        self.www = self._tmp / "www"
        self.scratch = self._tmp / "scratch"
        self.server = BenchServer(self._tmp / "obp")
        self.nginx = Nginx(self._tmp / "nginx", self.www)
        self._token = ""
        self._token_at = 0.0

    def __enter__(self) -> Self:
        try:
            self.www.mkdir()
            self.scratch.mkdir()
            self.server.start()
            create_namespace(self.server, NAMESPACE, token=self.token())
            self.nginx.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop nginx and the server, then remove the scratch folder."""
        try:
            self.nginx.stop()
        finally:
            try:
                self.server.stop()
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def token(self) -> str:
        """An access token of the global admin, renewed well before it expires."""
        if not self._token or time.monotonic() - self._token_at > TOKEN_REFRESH_S:
            self._token, self._token_at = self.server.admin_token(), time.monotonic()
        return self._token

    def auth(self) -> Headers:
        """The Authorization header of `token()`."""
        return bearer(self.token())

    def obp(self) -> Transfers:
        """A fresh connection to the OBP server, of the scenario's client kind."""
        return open_transfers(self.client, HOST, self.server.port)

    def web(self) -> Transfers:
        """A fresh connection to nginx, of the scenario's client kind."""
        return open_transfers(self.client, HOST, self.nginx.port)

    def file_path(self, file_id: str) -> str:
        """The API path of a file of `NAMESPACE`."""
        return f"/api/v1/namespaces/{NAMESPACE}/files/{file_id}"

    def upload(self, transfers: Transfers, name: str, chunks: Iterator[bytes], size: int) -> Any:
        """Upload `size` bytes as a raw body; the stored file's JSON (raises unless 201)."""
        headers = (*self.auth(), ("X-OBP-File-Name", quote(name)), ("Content-Type", OCTETS))
        done = transfers.upload(
            f"/api/v1/namespaces/{NAMESPACE}/files", chunks, size=size, headers=headers
        )
        if done.status != 201:
            raise RuntimeError(f"upload answered {done.status}: {done.content[:500]!r}")
        return json.loads(done.content)

    def delete(self, file_id: str) -> None:
        """Delete a file of `NAMESPACE` (its blob with it)."""
        response = httpx.delete(
            f"{self.server.url}{self.file_path(file_id)}", headers=dict(self.auth()), timeout=60
        )
        response.raise_for_status()

    def server_pids(self) -> tuple[int, ...]:
        """The OBP server's processes (main and workers)."""
        return self.server.pids()


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU seconds used so far by `pids`."""
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def mib_per_s(size: int, seconds: float) -> float:
    """Throughput of `size` bytes in `seconds`, MiB/s."""
    return round(size / MIB / seconds, 1) if seconds else 0.0


def spread(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """Median, min, max and every value, rounded."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "all": [round(value, digits) for value in values],
    }


@dataclass(frozen=True)
class Side:
    """One side of a file comparison: a connection, the path it asks for, and who serves it."""

    name: str
    transfers: Transfers
    path: str
    headers: Headers
    pids: tuple[int, ...]

    def download(self, *, extra: Headers = (), keep: bool = False) -> Measured:
        """GET the path once, with the CPU its server and this process spent meanwhile."""
        server_before, client_before = cpu_seconds(self.pids), time.process_time()
        done = self.transfers.download(self.path, headers=(*self.headers, *extra), keep=keep)
        return Measured(
            done,
            server_cpu_s=cpu_seconds(self.pids) - server_before,
            client_cpu_s=time.process_time() - client_before,
        )

    def batch(self, count: int) -> Batch:
        """GET the path `count` times in a row; the CPU is counted over them all (10 ms ticks)."""
        server_before, client_before = cpu_seconds(self.pids), time.process_time()
        done = [self.transfers.download(self.path, headers=self.headers) for _ in range(count)]
        return Batch(
            done,
            server_cpu_s=cpu_seconds(self.pids) - server_before,
            client_cpu_s=time.process_time() - client_before,
        )


@dataclass(frozen=True)
class Batch:
    """Transfers made one after the other, and the CPU seconds spent on them all."""

    transfers: list[Transfer]
    server_cpu_s: float
    client_cpu_s: float


@dataclass(frozen=True)
class Measured:
    """A transfer and the CPU seconds spent on it."""

    transfer: Transfer
    server_cpu_s: float
    client_cpu_s: float


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Nearest-rank p50, p90 and p99, mean, min and max of latencies, in ms."""
    ordered = sorted(seconds)

    def rank(pct: float) -> float:
        return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]

    figures = {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
    }
    return {name: round(value * 1000, 3) for name, value in figures.items()}

"""HTTP load from a separate process: N keep-alive connections, bounded by time or count."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import psutil

from bench.connections import (
    JSON,
    TRANSPORT_ERRORS,
    ClientKind,
    Connection,
    Headers,
    open_connection,
)

MAX_DURATION_S = 600.0
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 1024
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Workload:
    """What to send: requests cycling over `paths`, each with `headers`, and as its body

    - `create_prefix`: JSON `{"name": prefix + n}`, a new name every request;
    - `form`: these form fields, the same every request;
    - `raw`: these bytes with `raw_type` as Content-Type, the same every request (KV values);
    - `refresh_tokens` (one per connection): an OAuth2 `grant_type=refresh_token` form; each
      connection sends the refresh token of its previous response (rotation), and the result
      hands the last ones back (`LoadResult.refresh_tokens`) for the next run to go on with.
    """

    base_url: str
    paths: tuple[str, ...]
    method: str = "GET"
    create_prefix: str | None = None
    expect_status: int = 200
    headers: Headers = ()
    form: tuple[tuple[str, str], ...] | None = None
    raw: bytes | None = None
    raw_type: str = "application/octet-stream"
    refresh_tokens: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Load generation is only ever pointed at this machine.
        if urlsplit(self.base_url).hostname != "127.0.0.1":
            raise ValueError(f"load may only target 127.0.0.1, not {self.base_url}")
        if not self.paths:
            raise ValueError("a workload needs at least one path")
        bodies = (
            self.create_prefix is not None,
            self.form is not None,
            self.raw is not None,
            bool(self.refresh_tokens),
        )
        if sum(bodies) > 1:
            raise ValueError("give at most one of create_prefix, form, raw and refresh_tokens")


@dataclass(frozen=True)
class Limits:
    """How much load: `concurrency` connections until `duration_s` or `requests` is reached."""

    concurrency: int
    duration_s: float | None = None
    requests: int | None = None
    warmup_requests: int = 0
    watch_pids: tuple[int, ...] = ()
    client: ClientKind = "httpx"

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}")
        if self.duration_s is None and self.requests is None:
            raise ValueError("give a duration, a request count, or both")
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S}] s")
        if self.requests is not None and not 0 < self.requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be 1..{MAX_REQUESTS}")


@dataclass
class LoadResult:
    """Raw measurements of one load run (latencies in seconds, one per completed request)."""

    elapsed_s: float
    latencies: list[float]
    statuses: dict[int, int]
    transport_errors: int
    unexpected: int
    client_cpu_s: float
    server_cpu_s: float | None
    refresh_tokens: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles and CPU use, rounded for a report."""
        return summarize([self])


def summarize(runs: Iterable[LoadResult]) -> dict[str, Any]:
    """One summary over several runs: rates over their summed time, percentiles over all."""
    runs = list(runs)
    elapsed = sum(run.elapsed_s for run in runs)
    latencies = sorted(itertools.chain.from_iterable(run.latencies for run in runs))
    statuses: Counter[int] = Counter()
    for run in runs:
        statuses.update(run.statuses)
    count = len(latencies)
    client_cpu = sum(run.client_cpu_s for run in runs)
    server_cpus = [run.server_cpu_s for run in runs if run.server_cpu_s is not None]
    server_cpu = sum(server_cpus) if len(server_cpus) == len(runs) else None
    return {
        "requests": count,
        "elapsed_s": round(elapsed, 3),
        "rps": round(count / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": _ms(_percentile(latencies, 50)),
            "p95": _ms(_percentile(latencies, 95)),
            "p99": _ms(_percentile(latencies, 99)),
            "mean": _ms(sum(latencies) / count if count else math.nan),
            "max": _ms(latencies[-1] if latencies else math.nan),
        },
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "unexpected_status": sum(run.unexpected for run in runs),
        "transport_errors": sum(run.transport_errors for run in runs),
        # A client near 1.0 CPU is saturated: the server may then be faster than measured.
        "client_cpu_util": round(client_cpu / elapsed, 3) if elapsed else None,
        "client_cpu_ms_per_request": round(client_cpu * 1000 / count, 4) if count else None,
        "server_cpu_util": round(server_cpu / elapsed, 3) if server_cpu is not None else None,
        "server_cpu_ms_per_request": (
            round(server_cpu * 1000 / count, 4) if server_cpu is not None and count else None
        ),
    }


class LoadGenerator:
    """A child process kept across runs, so every run starts with the client already imported."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def run(self, workload: Workload, limits: Limits) -> LoadResult:
        """Apply `limits` of `workload` from the child process and return what it measured."""
        if self._pool is None:
            # spawn: a fresh interpreter, no copy of the parent's state or event loop.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        timeout = (limits.duration_s or MAX_DURATION_S) + 120.0
        return self._pool.submit(_run_in_child, workload, limits).result(timeout=timeout)

    def close(self) -> None:
        """Stop the child process."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _run_in_child(workload: Workload, limits: Limits) -> LoadResult:
    return asyncio.run(_drive(workload, limits))


async def _drive(workload: Workload, limits: Limits) -> LoadResult:
    address = urlsplit(workload.base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    if workload.refresh_tokens and len(workload.refresh_tokens) != limits.concurrency:
        raise ValueError("give one refresh token per connection")
    # Each connection's current refresh token, carried from the warm-up to the measured run.
    tokens = list(workload.refresh_tokens)
    connections = [open_connection(limits.client, host, port) for _ in range(limits.concurrency)]
    try:
        if limits.warmup_requests:
            # Opens every connection and warms server caches; these requests are not counted.
            warm = Limits(limits.concurrency, requests=limits.warmup_requests, client=limits.client)
            await _measure(connections, workload, warm, tag="warm-", tokens=tokens)
        return await _measure(connections, workload, limits, tag="", tokens=tokens)
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


async def _measure(
    connections: list[Connection],
    workload: Workload,
    limits: Limits,
    *,
    tag: str,
    tokens: list[str],
) -> LoadResult:
    numbers = itertools.count()
    form = urlencode(workload.form).encode() if workload.form is not None else None
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    watched = [psutil.Process(pid) for pid in limits.watch_pids]
    deadline = None

    async def client(index: int, connection: Connection) -> None:
        nonlocal errors
        while True:
            n = next(numbers)
            if limits.requests is not None and n >= limits.requests:
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            path = workload.paths[n % len(workload.paths)]
            body, content_type = None, JSON
            if workload.create_prefix is not None:
                body = json.dumps({"name": f"{workload.create_prefix}{tag}{n}"}).encode()
            elif form is not None:
                body, content_type = form, FORM
            elif workload.raw is not None:
                body, content_type = workload.raw, workload.raw_type
            elif tokens:
                fields = {"grant_type": "refresh_token", "refresh_token": tokens[index]}
                body, content_type = urlencode(fields).encode(), FORM
            sent = time.perf_counter()
            try:
                status, content = await connection.request(
                    workload.method,
                    path,
                    body,
                    headers=workload.headers,
                    content_type=content_type,
                )
            except TRANSPORT_ERRORS:
                errors += 1
                continue
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
            if tokens and status == 200:
                # Rotation: the token just sent is used up; the response holds the next one.
                tokens[index] = json.loads(content)["refresh_token"]

    server_before = _cpu_seconds(watched)
    client_before = time.process_time()
    started = time.perf_counter()
    if limits.duration_s is not None:
        deadline = started + limits.duration_s
    await asyncio.gather(*(client(i, connection) for i, connection in enumerate(connections)))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    server_after = _cpu_seconds(watched)
    unexpected = sum(n for code, n in statuses.items() if code != workload.expect_status)
    return LoadResult(
        elapsed_s=elapsed,
        latencies=latencies,
        statuses=dict(statuses),
        transport_errors=errors,
        unexpected=unexpected,
        client_cpu_s=client_cpu,
        server_cpu_s=(
            server_after - server_before
            if server_before is not None and server_after is not None
            else None
        ),
        refresh_tokens=tuple(tokens),
    )


def _cpu_seconds(processes: list[psutil.Process]) -> float | None:
    if not processes:
        return None
    try:
        return sum(sum(p.cpu_times()[:2]) for p in processes)
    except psutil.NoSuchProcess:
        return None


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)

"""Shared pieces of the multi-process integration tests: settings, AMQP isolation, polling."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aio_pika
import psutil
from aio_pika.abc import AbstractChannel

from obp.bootstrap import WORKER_JOBS
from tests.process import ServerProcess

# Settings an ambient `OBP_*` variable must not leak into a test server.
_RESET = {
    "OBP_DATABASE_URL": "",
    "OBP_CACHE_URL": "memory://",
    "OBP_BUS_URL": "memory://",
    "OBP_WORKERS": "1",
    "OBP_MIGRATE_ON_START": "true",
    "OBP_LOG_LEVEL": "info",
    "OBP_LOG_FORMAT": "json",
}


def server_env(*, data_dir: Path, **settings: str) -> dict[str, str]:
    """`OBP_*` variables for `obp serve`: embedded defaults in `data_dir`, then `settings`."""
    env = {**_RESET, "OBP_DATA_DIR": str(data_dir)}
    env.update({f"OBP_{key.upper()}": value for key, value in settings.items()})
    return env


def unique_exchange() -> str:
    """A topic exchange name of one test's own, so parallel runs never see each other's events."""
    return f"obp.test.{uuid.uuid4().hex}"


def bus_url(amqp_url: str, *, exchange: str) -> str:
    """`amqp_url` with OBP's `?exchange=` option set."""
    parts = urlsplit(amqp_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "exchange"]
    query.append(("exchange", exchange))
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def amqp_channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain (non-robust) connection and channel for a test's own declarations."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def delete_exchange(amqp_url: str, exchange: str) -> None:
    """Remove a test's exchange and the workers' queues on it (durable: they outlive servers)."""
    async with amqp_channel(amqp_url) as channel:
        # Left behind, quorum queues pile up run after run until the broker is too slow to
        # accept connections in time.
        for queue, _, _ in WORKER_JOBS:
            await channel.queue_delete(f"{exchange}.{queue}")
        await channel.exchange_delete(exchange)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.1
) -> float:
    """Poll `condition` until true; the seconds it took, or `TimeoutError` after `within` s."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > within:
            raise TimeoutError(f"condition still false after {within} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


def log_tail(server: ServerProcess, chars: int = 3000) -> str:
    """The end of a server's log, for failure messages."""
    try:
        return server.log_path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no log)"


def _group(server: ServerProcess) -> list[psutil.Process]:
    if server.pid is None:
        raise RuntimeError("the server is not running")
    root = psutil.Process(server.pid)
    return [root, *root.children(recursive=True)]


def freeze(server: ServerProcess, *, within: float = 5.0) -> None:
    """SIGSTOP the server's process group and wait until every member has stopped.

    A SIGKILL that follows is a crash at exactly this instant, and what the test reads from the
    backends meanwhile is what the crash leaves behind.
    """
    if server.pid is None:
        raise RuntimeError("the server is not running")
    os.killpg(server.pid, signal.SIGSTOP)
    deadline = time.monotonic() + within
    for member in _group(server):
        while True:
            try:
                status = member.status()
            except psutil.NoSuchProcess:
                break
            if status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {member.pid} did not stop in {within} s ({status})")
            time.sleep(0.001)


def thaw(server: ServerProcess) -> None:
    """SIGCONT the process group `freeze` stopped."""
    if server.pid is not None:
        os.killpg(server.pid, signal.SIGCONT)

"""Background work repeated at an interval, surviving its own failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("obp.periodic")


class Periodic:
    """Runs `job` every `interval` seconds (first at once) until stopped; errors are logged."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], *, interval: float) -> None:
        self._name = name
        self._job = job
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin the loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"periodic:{self._name}")

    async def stop(self) -> None:
        """Cancel the loop and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:
                # A backend may be down for a while; the next round tries again.
                log.warning("periodic job failed", job=self._name, exc_info=True)
            await asyncio.sleep(self._interval)

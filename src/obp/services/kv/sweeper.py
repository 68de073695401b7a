"""The expiry sweeper: a background task that keeps `kv_entries` small."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from obp.services.kv.service import KvService

log = structlog.get_logger("obp.kv")


class KvSweeper:
    """Deletes long expired values and old tombstones every `interval` seconds, in small
    batches; any number of sweepers may run at once (replicas, HTTP workers)."""

    def __init__(self, service: KvService, *, interval: float = 60.0) -> None:
        self._service = service
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the background task runs."""
        return self._task is not None

    async def start(self) -> None:
        """Start sweeping in the background (the first sweep after one interval)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="obp-kv-sweeper")

    async def stop(self) -> None:
        """Stop sweeping; a sweep cut short leaves its rows for the next one."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                deleted = await self._service.sweep_expired()
            except Exception:
                log.warning("kv sweep failed; trying again later", exc_info=True)
                continue
            if deleted:
                log.info("kv sweep", deleted=deleted)

"""The outbox relay: publishes events committed with their changes, so none is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from obp.adapters.db import Database
from obp.kernel.clock import utcnow
from obp.kernel.errors import Unavailable
from obp.kernel.events import Event
from obp.kernel.ports import Bus
from obp.kernel.tables import outbox

log = structlog.get_logger("obp.outbox")

_Row = tuple[int, bytes, int]  # id, body, attempts
MAX_BACKOFF_SECONDS = 300


class OutboxRelay:
    """Moves outbox rows to the bus after commit: at-least-once, in id order per batch.

    On PostgreSQL a relay locks its batch (`FOR UPDATE SKIP LOCKED`) while publishing and
    deletes it in the same transaction: replicas never publish the same rows, and a relay that
    dies releases its rows at once. SQLite has a single writer, and in-process consumers may
    write while an event is published, so there the relay leases its batch in one short
    transaction and deletes it in another; a relay starting on the file clears old leases,
    since the process that held them is gone.

    An event whose consumer fails is retried alone with an exponential back-off (it never
    blocks the others, and it is never dropped); an unreachable bus stops the batch. Delivery
    is at-least-once and, across failures, not ordered: consumers must be idempotent.
    """

    def __init__(
        self,
        database: Database,
        bus: Bus,
        *,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
    ) -> None:
        self._database = database
        self._bus = bus
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self, events: Sequence[Event] = ()) -> None:
        """Wake the relay now (a commit wrote events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of due events; how many were published."""
        if self._database.is_sqlite:
            return await self._relay_leased()
        return await self._relay_locked()

    async def pending(self) -> int:
        """How many events wait in the outbox (for tests and readiness)."""
        async with self._database.unit_of_work(write=False) as uow:
            count = await uow.connection.scalar(sa.select(sa.func.count()).select_from(outbox))
        return int(count or 0)

    async def start(self) -> None:
        """Run the relay loop in the background."""
        if self._task is not None:
            return
        if self._database.is_sqlite:
            await self._clear_leases()
        self._task = asyncio.create_task(self._run(), name="obp-outbox-relay")

    async def stop(self) -> None:
        """Stop the loop; unpublished rows stay in the outbox for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                count = await self.relay_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox relay failed; retrying", failures=failures)
                await asyncio.sleep(min(30.0, self._poll_seconds * 2**failures))
                continue
            if count >= self._batch_size:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # lands as the wait completes, and stop() would then wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()

    async def _publish(self, batch: Sequence[_Row]) -> _Outcome:
        """Publish in order. A failing event backs off alone; an unreachable bus stops the batch."""
        outcome = _Outcome()
        for row_id, body, attempts in batch:
            try:
                await self._bus.publish(Event.from_json(body))
            except Unavailable:
                raise
            except Exception:
                # A consumer failing on this event must not hold back every other tenant's.
                log.warning("event not delivered; backing off", row_id=row_id, exc_info=True)
                outcome.failed.append((row_id, attempts + 1))
            else:
                outcome.published.append(row_id)
        return outcome

    def _due(self) -> sa.Select[tuple[int]]:
        return (
            sa.select(outbox.c.id)
            .where(sa.or_(outbox.c.due_at.is_(None), outbox.c.due_at <= utcnow()))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )

    async def _settle(self, connection: AsyncConnection, outcome: _Outcome) -> None:
        """Delete what was published; push failed events back by an exponential back-off."""
        if outcome.published:
            await connection.execute(outbox.delete().where(outbox.c.id.in_(outcome.published)))
        now = utcnow()
        for row_id, attempts in outcome.failed:
            delay = timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2**attempts))
            await connection.execute(
                outbox.update()
                .where(outbox.c.id == row_id)
                .values(attempts=attempts, due_at=now + delay)
            )

    async def _relay_locked(self) -> int:
        async with self._database.unit_of_work() as uow:
            rows = (
                await uow.connection.execute(
                    sa.select(outbox.c.id, outbox.c.body, outbox.c.attempts)
                    .where(outbox.c.id.in_(self._due().with_for_update(skip_locked=True)))
                    .order_by(outbox.c.id)
                )
            ).all()
            # Publishing inside the transaction keeps the rows locked: if this process dies,
            # its connection drops, the locks go with it and another relay takes the rows.
            outcome = await self._publish([_row(row) for row in rows])
            await self._settle(uow.connection, outcome)
            await uow.commit()
        return len(outcome.published)

    async def _relay_leased(self) -> int:
        async with self._database.unit_of_work() as uow:
            rows = (
                await uow.connection.execute(
                    outbox.update()
                    .where(outbox.c.id.in_(self._due().scalar_subquery()))
                    .values(due_at=utcnow() + self._lease)
                    .returning(outbox.c.id, outbox.c.body, outbox.c.attempts)
                )
            ).all()
            await uow.commit()
        batch = sorted(_row(row) for row in rows)
        outcome = _Outcome()
        try:
            outcome = await self._publish(batch)
        finally:
            untouched = {row[0] for row in batch} - set(outcome.published)
            untouched -= {row_id for row_id, _ in outcome.failed}
            async with self._database.unit_of_work() as uow:
                await self._settle(uow.connection, outcome)
                if untouched:
                    # The bus went away mid-batch: these are due again as soon as it is back.
                    await uow.connection.execute(
                        outbox.update().where(outbox.c.id.in_(untouched)).values(due_at=None)
                    )
                await uow.commit()
        return len(outcome.published)

    async def _clear_leases(self) -> None:
        async with self._database.unit_of_work() as uow:
            await uow.connection.execute(
                outbox.update().where(outbox.c.due_at.is_not(None)).values(due_at=None)
            )
            await uow.commit()


@dataclass
class _Outcome:
    published: list[int] = field(default_factory=list)
    failed: list[tuple[int, int]] = field(default_factory=list)  # (row id, attempts so far)


def _row(row: Sequence[Any]) -> _Row:
    row_id, body, attempts = row
    return int(row_id), bytes(body), int(attempts)

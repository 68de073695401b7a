"""In-process topic bus (`memory://`), fed by the durable outbox.

Durability comes from the outbox, not from this bus: `publish()` returns only after every
matching handler ran, so the relay deletes an outbox row only once in-process consumers
handled it. If any handler raises, `publish()` raises after the other subscriptions got the
event, and the relay publishes the event again later. Those other subscriptions then see it
twice: delivery is at-least-once and consumers must be idempotent.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from obp.kernel.errors import ConfigurationError, Unavailable
from obp.kernel.events import Event, topic_matches
from obp.kernel.ports import EventHandler

log = logging.getLogger(__name__)


class MemorySubscription:
    """One handler attached to a MemoryBus; cancel it to stop receiving."""

    def __init__(
        self,
        bus: MemoryBus,
        patterns: Sequence[str],
        handler: EventHandler,
        queue: str | None,
    ) -> None:
        self._bus = bus
        self.patterns = tuple(patterns)
        self.handler = handler
        self.queue = queue
        self.active = True

    def matches(self, routing_key: str) -> bool:
        """Whether any of this subscription's patterns matches `routing_key`."""
        return any(topic_matches(pattern, routing_key) for pattern in self.patterns)

    async def cancel(self) -> None:
        """Stop delivering to the handler; cancelling twice is harmless."""
        self.active = False
        self._bus._forget(self)


class MemoryBus:
    """A Bus with AMQP topic semantics inside one process; publish awaits the handlers."""

    def __init__(self) -> None:
        self._subscriptions: list[MemorySubscription] = []
        # Per queue name, a counter that rotates deliveries among that queue's subscribers.
        self._turns: dict[str, itertools.count[int]] = {}
        self._closed = False

    @property
    def backend(self) -> str:
        """Always `memory`."""
        return "memory"

    async def ping(self) -> None:
        """Nothing to reach; only a closed bus is unavailable."""
        if self._closed:
            raise Unavailable("memory bus: closed")

    async def start(self) -> None:
        """Nothing to connect to."""
        self._closed = False

    async def publish(self, event: Event) -> None:
        """Run every matching handler (one per named queue); raise if any of them raised."""
        if self._closed:
            raise Unavailable("memory bus: closed")
        errors: list[Exception] = []
        # Handlers run one after another, in subscription order: deterministic, and a handler
        # that publishes (nested events) finishes its own deliveries before the next one runs.
        for subscription in self._targets(event.routing_key):
            if not subscription.active:
                continue  # cancelled by an earlier handler of this same event
            try:
                await subscription.handler(event)
            except Exception as exc:
                log.warning(
                    "handler failed for event %s (%s); it will be published again",
                    event.id,
                    event.routing_key,
                    exc_info=True,
                )
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"{len(errors)} handlers failed for event {event.id}", errors)

    async def subscribe(
        self, *, patterns: Sequence[str], handler: EventHandler, queue: str | None = None
    ) -> MemorySubscription:
        """Deliver matching events to `handler`; subscribers sharing `queue` take turns."""
        if self._closed:
            raise Unavailable("memory bus: closed")
        if not patterns:
            raise ValueError("subscribe needs at least one pattern")
        subscription = MemorySubscription(self, patterns, handler, queue)
        self._subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        """Cancel every subscription; with no broker, nothing undelivered remains."""
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        self._turns.clear()
        self._closed = True

    def _targets(self, routing_key: str) -> list[MemorySubscription]:
        """Every matching broadcast subscription, plus one matching subscriber per queue."""
        targets: list[MemorySubscription] = []
        by_queue: dict[str, list[MemorySubscription]] = {}
        for subscription in self._subscriptions:
            if not subscription.matches(routing_key):
                continue
            if subscription.queue is None:
                targets.append(subscription)
            else:
                by_queue.setdefault(subscription.queue, []).append(subscription)
        for name, members in by_queue.items():
            turn = next(self._turns.setdefault(name, itertools.count()))
            targets.append(members[turn % len(members)])
        return targets

    def _forget(self, subscription: MemorySubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


def create(url: str) -> MemoryBus:
    """A MemoryBus for `memory://` (it takes no options)."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise ConfigurationError(f"bus URL must start with memory://, got {parts.scheme!r}")
    if parts.netloc or parts.path.strip("/") or parts.query:
        raise ConfigurationError(
            f"the memory bus takes no host, path or options, got {url.split('@')[-1]!r}"
        )
    return MemoryBus()

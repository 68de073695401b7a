"""The Bus contract, run against every bus adapter that is reachable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import pytest_asyncio

from obp.adapters import bus_amqp, bus_memory
from obp.kernel.errors import Unavailable
from obp.kernel.events import Event
from obp.kernel.ports import Bus, Subscription
from tests.servers import server_url

TIMEOUT = 5.0
# How long to keep listening before concluding that nothing more arrives.
QUIET = 0.3


class Recorder:
    """A handler that records what it got; it can fail the first deliveries of each event."""

    def __init__(self, *, failures_per_event: int = 0) -> None:
        self.events: list[Event] = []
        self.attempts: dict[str, int] = {}
        self._failures = failures_per_event

    async def __call__(self, event: Event) -> None:
        self.attempts[event.id] = self.attempts.get(event.id, 0) + 1
        if self.attempts[event.id] <= self._failures:
            raise RuntimeError(f"planned failure #{self.attempts[event.id]}")
        self.events.append(event)

    @property
    def keys(self) -> list[str]:
        return [event.routing_key for event in self.events]


class Harness:
    """One bus, isolated per test on AMQP (own exchange and queues), cleaned up afterwards."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.subscriptions: list[Subscription] = []
        self.queues: list[str] = []

    def queue(self, label: str) -> str:
        name = f"obp.test.{label}.{uuid.uuid4().hex}"
        self.queues.append(name)
        return name

    async def subscribe(
        self, patterns: Sequence[str], handler: Recorder, queue: str | None = None
    ) -> Subscription:
        subscription = await self.bus.subscribe(patterns=patterns, handler=handler, queue=queue)
        self.subscriptions.append(subscription)
        return subscription

    async def publish(self, event: Event) -> int:
        """Publish like the outbox relay: retry while publish raises; return the attempts."""
        for attempt in range(1, 11):
            try:
                await self.bus.publish(event)
            except Exception:
                await asyncio.sleep(0.05)
                continue
            return attempt
        raise AssertionError(f"event {event.id} still failing after 10 publishes")

    async def cleanup(self) -> None:
        for subscription in self.subscriptions:
            await subscription.cancel()
        if isinstance(self.bus, bus_amqp.AmqpBus):
            for name in self.queues:
                await self.bus.delete_queue(name)
            await self.bus.delete_exchange()


async def _harness(kind: str) -> AsyncIterator[Harness]:
    bus: Bus
    if kind == "memory":
        bus = bus_memory.create("memory://")
    else:
        url = server_url("amqp")
        separator = "&" if "?" in url else "?"
        bus = bus_amqp.create(f"{url}{separator}exchange=obp.test.{uuid.uuid4().hex}")
    await bus.start()
    harness = Harness(bus)
    try:
        yield harness
        await harness.cleanup()
    finally:
        await bus.close()


@pytest_asyncio.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.amqp)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async for value in _harness(request.param):
        yield value


@pytest_asyncio.fixture
async def amqp_harness() -> AsyncIterator[Harness]:
    async for value in _harness("amqp"):
        yield value


def event(routing: str = "acme.namespace.created", **payload: object) -> Event:
    namespace, service, name = routing.split(".")
    return Event(namespace=namespace, service=service, name=name, payload=payload)


async def eventually(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), TIMEOUT)


async def test_ping_succeeds_once_started(harness: Harness) -> None:
    await harness.bus.ping()
    assert harness.bus.backend in ("memory", "rabbitmq")


async def test_delivers_event_to_matching_subscriber_with_payload_and_id(
    harness: Harness,
) -> None:
    recorder = Recorder()
    await harness.subscribe(["acme.namespace.created"], recorder)
    sent = event(name="acme", sizes=[1, 2], nested={"ok": True})

    await harness.publish(sent)
    await eventually(lambda: len(recorder.events) == 1)

    received = recorder.events[0]
    assert received.id == sent.id
    assert received.payload == {"name": "acme", "sizes": [1, 2], "nested": {"ok": True}}
    assert received.routing_key == sent.routing_key
    assert received.occurred_at == sent.occurred_at


async def test_star_matches_exactly_one_word_and_hash_matches_many(harness: Harness) -> None:
    star_last, star_first, hash_tail = Recorder(), Recorder(), Recorder()
    await harness.subscribe(["acme.namespace.*"], star_last)
    await harness.subscribe(["*.namespace.deleted"], star_first)
    await harness.subscribe(["acme.#"], hash_tail)

    for routing in ("acme.namespace.created", "other.namespace.deleted", "acme.kv.put"):
        await harness.publish(event(routing))
    # Matches all three patterns; per-queue order is kept, so it arrives last everywhere.
    await harness.publish(event("acme.namespace.deleted"))
    await eventually(
        lambda: all(
            r.keys[-1:] == ["acme.namespace.deleted"] for r in (star_last, star_first, hash_tail)
        )
    )

    assert star_last.keys == ["acme.namespace.created", "acme.namespace.deleted"]
    assert star_first.keys == ["other.namespace.deleted", "acme.namespace.deleted"]
    assert hash_tail.keys == ["acme.namespace.created", "acme.kv.put", "acme.namespace.deleted"]


async def test_does_not_deliver_non_matching_events(harness: Harness) -> None:
    recorder = Recorder()
    await harness.subscribe(["acme.kv.*"], recorder, queue=harness.queue("nomatch"))

    await harness.publish(event("acme.namespace.created"))
    await harness.publish(event("other.kv.put"))
    await harness.publish(event("acme.kv.put"))  # the only match; it arrives after the others
    await eventually(lambda: len(recorder.events) >= 1)
    await asyncio.sleep(QUIET)

    assert recorder.keys == ["acme.kv.put"]


async def test_every_broadcast_subscriber_receives_each_event(harness: Harness) -> None:
    first, second = Recorder(), Recorder()
    await harness.subscribe(["acme.#"], first)
    await harness.subscribe(["acme.#"], second)

    sent = event()
    await harness.publish(sent)
    await eventually(lambda: len(first.events) == 1 and len(second.events) == 1)

    assert first.events[0].id == second.events[0].id == sent.id


async def test_subscribers_on_one_named_queue_share_events_handling_each_once(
    harness: Harness,
) -> None:
    queue = harness.queue("shared")
    first, second = Recorder(), Recorder()
    await harness.subscribe(["acme.#"], first, queue=queue)
    await harness.subscribe(["acme.#"], second, queue=queue)

    sent = [event(n=n) for n in range(20)]
    for item in sent:
        await harness.publish(item)
    await eventually(lambda: len(first.events) + len(second.events) >= len(sent))
    await asyncio.sleep(QUIET)

    handled = [item.id for item in first.events + second.events]
    assert sorted(handled) == sorted(item.id for item in sent)
    assert first.events
    assert second.events


@pytest.mark.parametrize("shared", [False, True], ids=["broadcast", "named-queue"])
async def test_a_failing_handler_gets_the_event_again_until_it_is_handled(
    harness: Harness, shared: bool
) -> None:
    flaky = Recorder(failures_per_event=1)
    steady = Recorder()
    await harness.subscribe(["acme.#"], flaky, queue=harness.queue("flaky") if shared else None)
    await harness.subscribe(["acme.#"], steady)
    sent = event()

    await harness.publish(sent)
    await eventually(lambda: len(flaky.events) == 1)

    assert flaky.events[0].id == sent.id
    assert flaky.attempts[sent.id] == 2
    # At-least-once: a subscriber that did not fail may see the event again; never zero times.
    assert {item.id for item in steady.events} == {sent.id}


@pytest.mark.parametrize("shared", [False, True], ids=["broadcast", "named-queue"])
async def test_a_cancelled_subscription_receives_nothing_more(
    harness: Harness, shared: bool
) -> None:
    cancelled, control = Recorder(), Recorder()
    queue = harness.queue("cancelled") if shared else None
    subscription = await harness.subscribe(["acme.#"], cancelled, queue=queue)
    await harness.subscribe(["acme.#"], control)
    await harness.publish(event())
    await eventually(lambda: len(cancelled.events) == 1 and len(control.events) == 1)

    await subscription.cancel()
    await subscription.cancel()  # cancelling twice is harmless
    await harness.publish(event())
    await eventually(lambda: len(control.events) == 2)
    await asyncio.sleep(QUIET)

    assert len(cancelled.events) == 1


@pytest.mark.amqp
async def test_amqp_named_queue_keeps_events_published_while_no_consumer_is_attached(
    amqp_harness: Harness,
) -> None:
    queue = amqp_harness.queue("durable")
    before = Recorder()
    subscription = await amqp_harness.subscribe(["acme.#"], before, queue=queue)
    await subscription.cancel()

    sent = event()
    await amqp_harness.publish(sent)
    after = Recorder()
    await amqp_harness.subscribe(["acme.#"], after, queue=queue)
    await eventually(lambda: len(after.events) == 1)

    assert after.events[0].id == sent.id
    assert before.events == []


async def test_memory_publish_raises_after_the_other_subscribers_got_the_event() -> None:
    bus = bus_memory.create("memory://")
    await bus.start()
    failing, steady = Recorder(failures_per_event=1), Recorder()
    await bus.subscribe(patterns=["acme.#"], handler=failing)
    await bus.subscribe(patterns=["acme.#"], handler=steady)
    try:
        with pytest.raises(RuntimeError, match="planned failure"):
            await bus.publish(event())
        assert len(steady.events) == 1
    finally:
        await bus.close()


async def test_amqp_start_against_a_closed_port_raises_unavailable() -> None:
    bus = bus_amqp.create("amqp://guest:guest@127.0.0.1:1/")
    try:
        with pytest.raises(Unavailable, match=r"^amqp: "):
            await bus.start()
        with pytest.raises(Unavailable, match=r"^amqp: "):
            await bus.ping()
    finally:
        await bus.close()

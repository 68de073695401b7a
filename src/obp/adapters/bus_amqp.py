"""RabbitMQ bus (`amqp://`, `amqps://`) on aio-pika: a durable topic exchange, quorum queues.

Publishing waits for the broker's publisher confirm, so the outbox relay deletes a row only once
RabbitMQ holds the message durably. Consumers ack after their handler returned and reject with
requeue when it raised: delivery is at-least-once and consumers must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aio_pika
import pamqp.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError, ChannelPreconditionFailed

from obp.kernel.errors import ConfigurationError, Unavailable
from obp.kernel.events import Event
from obp.kernel.ports import EventHandler

log = logging.getLogger(__name__)

DEFAULT_EXCHANGE = "obp.events"
DEFAULT_PREFETCH = 32
_OUR_OPTIONS = ("exchange", "prefetch")
# What a lost or refusing broker surfaces as; all of them mean "retry later".
_UNREACHABLE = (AMQPError, ConnectionError, OSError, pamqp.exceptions.PAMQPException)
_Consume = Callable[[AbstractIncomingMessage], Awaitable[None]]


class AmqpSubscription:
    """A consumer on its own channel; cancelling it leaves a durable queue and its messages."""

    def __init__(
        self, channel: AbstractChannel, queue: AbstractQueue, forget: Callable[[], None]
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._forget = forget
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def queue_name(self) -> str:
        """The broker queue this subscription consumes from."""
        return self._queue.name

    async def cancel(self) -> None:
        """Stop the consumer, let running handlers finish, then close the channel."""
        self._forget()
        if self._channel.is_closed:
            return
        with contextlib.suppress(*_UNREACHABLE):
            if self._consumer_tag is not None:
                await self._queue.cancel(self._consumer_tag)
            # Acks go over this channel, so it must outlive the handlers already running; a
            # handler cancelling its own subscription must not wait for itself.
            others = self._inflight - {asyncio.current_task()}
            if others:
                await asyncio.gather(*others, return_exceptions=True)
            # Closing returns prefetched but unhandled messages to the queue.
            await self._channel.close()


class AmqpBus:
    """A Bus on RabbitMQ with a robust (self-reconnecting) connection."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        prefetch: int = DEFAULT_PREFETCH,
        timeout: float = 10.0,
        requeue_delay: float = 0.5,
    ) -> None:
        self._url = url
        self._exchange_name = exchange
        self._prefetch = prefetch
        self._timeout = timeout
        # A pause before requeueing a failed message, so a poison message does not spin the CPU.
        self._requeue_delay = requeue_delay
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._subscriptions: set[AmqpSubscription] = set()

    @property
    def backend(self) -> str:
        """Always `rabbitmq`."""
        return "rabbitmq"

    @property
    def exchange_name(self) -> str:
        """The topic exchange events are published to."""
        return self._exchange_name

    async def start(self) -> None:
        """Connect, open a confirming channel and declare the durable topic exchange."""
        connection = aio_pika.RobustConnection(make_url(self._url))
        try:
            await connection.connect(timeout=self._timeout)
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except (*_UNREACHABLE, TimeoutError) as exc:
            await connection.close()
            raise Unavailable(f"amqp: {_reason(exc)}") from exc
        self._connection, self._channel, self._exchange = connection, channel, exchange

    async def ping(self) -> None:
        """Return if the connection is open, else raise Unavailable (e.g. while reconnecting)."""
        connection = self._connection
        if connection is None or connection.is_closed:
            raise Unavailable("amqp: not connected")
        if not connection.connected.is_set():
            raise Unavailable("amqp: connection lost, reconnecting")
        if self._channel is None or self._channel.is_closed:
            raise Unavailable("amqp: publishing channel is closed")

    async def publish(self, event: Event) -> None:
        """Publish persistently and return once the broker confirmed it."""
        exchange = self._require_exchange()
        message = aio_pika.Message(
            event.to_json(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            timestamp=event.occurred_at,
            type=event.routing_key,
        )
        try:
            # mandatory=False: an event no queue is bound to is not an error, nobody wants it.
            await exchange.publish(
                message, routing_key=event.routing_key, mandatory=False, timeout=self._timeout
            )
        except (*_UNREACHABLE, TimeoutError) as exc:
            raise Unavailable(f"amqp: publish failed: {_reason(exc)}") from exc

    async def subscribe(
        self, *, patterns: Sequence[str], handler: EventHandler, queue: str | None = None
    ) -> AmqpSubscription:
        """Consume matching events; a named queue is a durable quorum queue shared by consumers."""
        if not patterns:
            raise ValueError("subscribe needs at least one pattern")
        connection = self._require_connection()
        try:
            channel = await connection.channel()
        except (*_UNREACHABLE, TimeoutError) as exc:
            raise Unavailable(f"amqp: cannot open a channel: {_reason(exc)}") from exc
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            if queue is not None:
                # Prefixed with the exchange: deployments sharing a broker (each with its own
                # exchange) must not take each other's work.
                declared = await channel.declare_queue(
                    f"{self._exchange_name}.{queue}",
                    durable=True,
                    arguments={"x-queue-type": "quorum"},
                )
            else:
                # Named here rather than by the server so the robust channel can redeclare it
                # after a reconnect; exclusive + auto-delete: it dies with this consumer.
                declared = await channel.declare_queue(
                    f"{self._exchange_name}.broadcast.{uuid.uuid4().hex}",
                    exclusive=True,
                    auto_delete=True,
                )
            for pattern in patterns:
                await declared.bind(self._exchange_name, routing_key=pattern)
            subscription = AmqpSubscription(
                channel, declared, lambda: self._subscriptions.discard(subscription)
            )
            consume = self._consumer(handler, subscription)
            subscription._consumer_tag = await declared.consume(consume, no_ack=False)
        except ChannelPreconditionFailed as exc:
            await _close_quietly(channel)
            raise ConfigurationError(
                f"amqp: queue {queue!r} already exists with other settings: {exc}"
            ) from exc
        except (*_UNREACHABLE, TimeoutError) as exc:
            await _close_quietly(channel)
            raise Unavailable(f"amqp: subscribe failed: {_reason(exc)}") from exc
        self._subscriptions.add(subscription)
        return subscription

    def _consumer(self, handler: EventHandler, subscription: AmqpSubscription) -> _Consume:
        async def consume(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                subscription._inflight.add(task)
            try:
                await self._deliver(handler, message)
            finally:
                if task is not None:
                    subscription._inflight.discard(task)

        return consume

    async def _deliver(self, handler: EventHandler, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.from_json(message.body)
        except (ValueError, KeyError, TypeError):
            # Redelivering a body we cannot parse would loop forever: drop it, loudly.
            log.error("dropping unparsable message %s", message.message_id, exc_info=True)
            await _settle(message.reject(requeue=False))
            return
        try:
            await handler(event)
        except Exception:
            log.warning(
                "handler failed for event %s (%s); requeueing it",
                event.id,
                event.routing_key,
                exc_info=True,
            )
            await asyncio.sleep(self._requeue_delay)
            await _settle(message.reject(requeue=True))
            return
        await _settle(message.ack())

    async def delete_queue(self, name: str) -> None:
        """Delete a durable queue (by the name given to subscribe) and its messages."""
        channel = self._require_channel()
        try:
            await channel.queue_delete(f"{self._exchange_name}.{name}")
        except (*_UNREACHABLE, TimeoutError) as exc:
            raise Unavailable(f"amqp: cannot delete queue {name!r}: {_reason(exc)}") from exc

    async def delete_exchange(self) -> None:
        """Delete this bus's exchange (tests isolating themselves with their own exchange)."""
        channel = self._require_channel()
        try:
            await channel.exchange_delete(self._exchange_name)
        except (*_UNREACHABLE, TimeoutError) as exc:
            raise Unavailable(f"amqp: cannot delete exchange: {_reason(exc)}") from exc

    async def close(self) -> None:
        """Cancel every consumer and disconnect; durable queues keep undelivered messages."""
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        self._subscriptions.clear()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise Unavailable("amqp: bus not started")
        return self._connection

    def _require_channel(self) -> AbstractChannel:
        if self._channel is None:
            raise Unavailable("amqp: bus not started")
        return self._channel

    def _require_exchange(self) -> AbstractExchange:
        if self._exchange is None:
            raise Unavailable("amqp: bus not started")
        return self._exchange


async def _settle(settling: Awaitable[None]) -> None:
    """Await an ack/reject; if the channel is gone the broker redelivers anyway."""
    try:
        await settling
    except (*_UNREACHABLE, RuntimeError) as exc:
        log.info("could not settle a message (%s); the broker will redeliver it", exc)


async def _close_quietly(channel: AbstractChannel) -> None:
    with contextlib.suppress(*_UNREACHABLE, RuntimeError):
        await channel.close()


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def create(url: str) -> AmqpBus:
    """An AmqpBus for `url`; `?exchange=` and `?prefetch=` are ours, other options aio-pika's."""
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigurationError(
            f"bus URL must start with amqp:// or amqps://, got {parts.scheme!r}"
        )
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OUR_OPTIONS:
            ours[name] = value
        else:
            theirs.append((name, value))
    exchange = ours.get("exchange", DEFAULT_EXCHANGE)
    if not exchange or exchange.startswith("amq."):
        raise ConfigurationError(
            f"amqp option 'exchange' must be a non-empty name not starting with 'amq.', "
            f"got {exchange!r}"
        )
    raw_prefetch = ours.get("prefetch", str(DEFAULT_PREFETCH))
    if not raw_prefetch.isdigit() or not 0 < int(raw_prefetch) <= 65535:
        raise ConfigurationError(
            f"amqp option 'prefetch' must be an integer from 1 to 65535, got {raw_prefetch!r}"
        )
    broker_url = urlunsplit(parts._replace(query=urlencode(theirs)))
    return AmqpBus(broker_url, exchange=exchange, prefetch=int(raw_prefetch))

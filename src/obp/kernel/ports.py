"""Ports: the contracts every backend adapter keeps (one contract test suite per port)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.ext.asyncio import AsyncConnection

from obp.kernel.events import Event

EventHandler = Callable[[Event], Awaitable[None]]


class Probe(Protocol):
    """Anything `/readyz` can check."""

    @property
    def backend(self) -> str:
        """A short name of the engine behind this port, such as `sqlite` or `redis`."""
        ...

    async def ping(self) -> None:
        """Return if the backend answers, else raise `Unavailable` saying why."""
        ...


class Cache(Probe, Protocol):
    """A size-bounded key-value cache of bytes; entries may vanish at any time (LRU)."""

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store `value`; with `ttl` (seconds) it expires after that long."""
        ...

    async def delete(self, *keys: str) -> None:
        """Remove the keys; absent keys are ignored."""
        ...

    async def put_versioned(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> bool:
        """Store `value` as `version` (0 <= version < 10**20) unless the key holds that version
        or a newer one; atomic, so of concurrent writers the highest version stays.

        Whether it was newer: a `ttl` <= 0 then stores nothing but removes the older entry. A
        key is used either through `put_versioned`/`get_versioned` or `set`/`get`, never both.
        """
        ...

    async def get_versioned(self, key: str) -> tuple[int, bytes] | None:
        """The (version, value) `put_versioned` stored, or None when absent or expired."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class Subscription(Protocol):
    """A live subscription; cancel it to stop receiving."""

    async def cancel(self) -> None:
        """Stop delivering to the handler (durable queues keep their messages)."""
        ...


class Bus(Probe, Protocol):
    """A topic bus with AMQP semantics: `*` matches one routing word, `#` any number."""

    async def start(self) -> None:
        """Connect and declare the exchange."""
        ...

    async def publish(self, event: Event) -> None:
        """Return once the bus holds the event durably (in-process: once handlers ran)."""
        ...

    async def subscribe(
        self, *, patterns: Sequence[str], handler: EventHandler, queue: str | None = None
    ) -> Subscription:
        """Deliver matching events to `handler`.

        With `queue` set, the queue is durable and shared: each event goes to one of the
        subscribers on that queue (work distribution). With `queue=None` the subscription is
        private to this process and gets every matching event (broadcast, e.g. invalidation).
        A handler that raises gets the event again later.
        """
        ...

    async def close(self) -> None:
        """Disconnect; undelivered durable messages stay on the broker."""
        ...


class UnitOfWork(Protocol):
    """One database transaction owned by the service layer, with its outbox."""

    @property
    def connection(self) -> AsyncConnection:
        """The connection repositories use inside this unit of work."""
        ...

    def emit(self, event: Event) -> None:
        """Queue an event; it is written to the outbox in this transaction at commit."""
        ...

    async def commit(self) -> None:
        """Write queued events to the outbox and commit; without it, exit rolls back."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens units of work; `write=True` takes the database's write lock up front."""

    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class KeyStore(Probe, Protocol):
    """The vault's root of trust: root keys that wrap data keys and never leave the store.

    Root keys are versioned; `wrap` always uses the current version and says which one it used,
    `unwrap` takes that version back. Wrapping is AES-256-GCM with caller-supplied associated
    data, so a wrapped key moved to another context does not unwrap.
    """

    async def open(self, *, create: bool) -> None:
        """Open the store; with `create`, make the first root key if there is none.

        Raise `Sealed` saying why when the store cannot be used (missing key, wrong PIN, no HSM).
        """
        ...

    @property
    def current_version(self) -> str:
        """The root key version `wrap` uses (the store must be open)."""
        ...

    async def versions(self) -> list[str]:
        """Every root key version the store holds, oldest first."""
        ...

    async def wrap(self, key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Encrypt `key` under the current root key: (root version, wrapped bytes)."""
        ...

    async def unwrap(self, version: str, wrapped: bytes, *, aad: bytes) -> bytes:
        """Decrypt a wrapped key; `Sealed` if the version is gone, `TamperedError` if altered."""
        ...

    async def rotate(self) -> str:
        """Create a new root key version and make it current; its version."""
        ...

    async def destroy(self, version: str) -> None:
        """Destroy a root key version for good (after every key it wrapped was re-wrapped)."""
        ...

    async def close(self) -> None:
        """Release the store (sessions, file handles)."""
        ...


class ByteStream(Protocol):
    """Bytes in chunks, as from `async for`; `aclose` releases the stream before its end."""

    def __aiter__(self) -> ByteStream: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None:
        """Release the file or connection now (it is also released at the end or when dropped)."""
        ...


class BlobStore(Probe, Protocol):
    """Objects of bytes by key, streamed in and out in bounded memory, whatever their size.

    Keys are `/`-separated relative paths whose segments match `[A-Za-z0-9._-]+` (neither `.`
    nor `..`), at most 1024 bytes, starting with the namespace; any other key raises
    `InvalidInput`. A key must not also be a folder of other keys (`a/b` beside `a/b/c`): S3
    allows it, files do not. A failed or cancelled `put` propagates its exception and leaves
    nothing of itself (an earlier object under the key stays as it was).
    """

    async def start(self) -> None:
        """Open connections and sweep what a crash left behind."""
        ...

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the chunks as object `key`, replacing any; return the byte count once durable."""
        ...

    async def read(self, key: str, *, offset: int = 0, length: int | None = None) -> ByteStream:
        """`NotFound` at once if absent, else bytes [offset, offset+length) in chunks <= 1 MiB."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if it is absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object and any unfinished upload of it; absent is fine."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix` (not empty); return how many."""
        ...

    async def close(self) -> None:
        """Release connections and stop background work."""
        ...


class AuditTrail(Protocol):
    """Where refusals and failures are recorded for a namespace's operators."""

    def record(
        self,
        *,
        namespace: str,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record one entry (without waiting for it to be stored)."""
        ...

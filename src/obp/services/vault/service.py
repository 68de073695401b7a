"""The vault: per-namespace envelope encryption and key pairs, rooted in the key store."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey

from obp.kernel.clock import utcnow
from obp.kernel.errors import NotFound, Sealed
from obp.kernel.events import Event
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.ports import KeyStore, UnitOfWorkFactory
from obp.services.vault import model
from obp.services.vault.model import DataKey, KeyPair
from obp.services.vault.repository import VaultRepository

log = structlog.get_logger("obp.vault")

EVENT_SERVICE = "vault"
SIGNING_ALGORITHM = "ES256"
# How often a sealed vault tries its key store again (e.g. an HSM that comes back).
REOPEN_SECONDS = 5.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class VaultStatus:
    """Whether the vault can serve keys, and if not, why."""

    sealed: bool
    reason: str | None
    keystore: str
    root_version: str | None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A namespace's current private signing key, for services that issue tokens."""

    kid: str
    algorithm: str
    private_pem: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RootRotation:
    """What a root key rotation did."""

    root_version: str
    rewrapped: int
    destroyed: list[str]


class _Lru(Generic[K, V]):
    """A small bounded LRU map for unwrapped keys (never persisted, never logged)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, predicate: Callable[[K], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            del self._items[key]


class VaultService:
    """Seals and unseals data per namespace; keys are wrapped by the key store's root key."""

    def __init__(
        self, *, unit_of_work: UnitOfWorkFactory, keystore: KeyStore, cache_size: int = 10_000
    ) -> None:
        self._uow = unit_of_work
        self._keystore = keystore
        self._ciphers: _Lru[tuple[str, str], AESGCM] = _Lru(cache_size)
        self._active: _Lru[str, tuple[str, datetime]] = _Lru(cache_size)
        self._signing: _Lru[str, SigningKey] = _Lru(cache_size)
        self._sealed_reason: str | None = "the key store has not been opened"
        self._last_attempt = 0.0
        self._open_lock = asyncio.Lock()

    @property
    def backend(self) -> str:
        """The key store behind the vault."""
        return self._keystore.backend

    @property
    def status(self) -> VaultStatus:
        """Sealed or not, and why."""
        return VaultStatus(
            sealed=self._sealed_reason is not None,
            reason=self._sealed_reason,
            keystore=self._keystore.backend,
            root_version=None if self._sealed_reason else self._keystore.current_version,
        )

    async def start(self) -> None:
        """Open the key store, creating the first root key only on a vault with no keys yet."""
        await self._open()

    async def ping(self) -> None:
        """Readiness: `Sealed` with the reason while the key store cannot be used."""
        await self._require_open()
        try:
            await self._keystore.ping()
        except Sealed as exc:
            # Lost while running (key file removed, HSM gone): seal until it is back.
            log.warning("vault sealed", reason=exc.detail)
            self._sealed_reason = exc.detail
            raise Sealed(f"the vault is sealed: {exc.detail}") from exc

    async def close(self) -> None:
        """Forget every unwrapped key and close the key store."""
        self._ciphers = _Lru(1)
        self._signing = _Lru(1)
        await self._keystore.close()

    async def seal(
        self,
        *,
        namespace: str,
        plaintext: bytes,
        aad: bytes = b"",
        not_before: datetime | None = None,
    ) -> bytes:
        """Encrypt for `namespace` with its active data key; `aad` must match at unseal.

        `not_before` is when the namespace was created: a key older than that belongs to a
        deleted namespace of the same name whose purge has not run yet, so it is not used.
        """
        key_id, cipher = await self._active_cipher(namespace, not_before)
        return model.seal(cipher, namespace=namespace, key_id=key_id, plaintext=plaintext, aad=aad)

    async def unseal(self, *, namespace: str, sealed: bytes, aad: bytes = b"") -> bytes:
        """Decrypt what `seal` produced; `TamperedError` if anything was altered."""
        key_id = model.key_id_of(sealed)
        cipher = await self._cipher(namespace, key_id)
        return model.unseal(cipher, namespace=namespace, sealed=sealed, aad=aad)

    async def rotate_data_key(self, *, namespace: str) -> str:
        """Seal new data with a new key; data sealed before stays readable. The new key id."""
        await self._require_open()
        key_id, secret = model.new_data_key()
        root_version, wrapped = await self._keystore.wrap(
            secret, aad=model.wrap_aad(namespace, key_id)
        )
        key = DataKey(namespace, key_id, True, wrapped, root_version, utcnow())
        async with self._uow() as uow:
            repository = VaultRepository(uow.connection)
            await repository.retire_active_data_key(namespace)
            await repository.add_data_key(key)
            uow.emit(Event(namespace=namespace, service=EVENT_SERVICE, name="data_key_rotated"))
            await uow.commit()
        self._ciphers.put((namespace, key_id), AESGCM(secret))
        self._active.put(namespace, (key_id, key.created_at))
        return key_id

    async def rotate_root(self) -> RootRotation:
        """New root key; re-wrap every data key under it (data untouched); destroy the old."""
        await self._require_open()
        current = await self._keystore.rotate()
        rewrapped = 0
        while True:
            async with self._uow(write=False) as uow:
                batch = await VaultRepository(uow.connection).wrapped_elsewhere(current, limit=200)
            if not batch:
                break
            rewraps = []
            for key in batch:
                aad = model.wrap_aad(key.namespace, key.key_id)
                secret = await self._keystore.unwrap(key.root_version, key.wrapped, aad=aad)
                rewraps.append((key, *await self._keystore.wrap(secret, aad=aad)))
            async with self._uow() as uow:
                repository = VaultRepository(uow.connection)
                for key, version, wrapped in rewraps:
                    await repository.rewrap(key, root_version=version, wrapped=wrapped)
                await uow.commit()
            rewrapped += len(batch)
        async with self._uow() as uow:
            in_use = await VaultRepository(uow.connection).root_versions_in_use()
            destroyed = [
                version
                for version in await self._keystore.versions()
                if version != current and version not in in_use
            ]
            for version in destroyed:
                await self._keystore.destroy(version)
            uow.emit(
                Event(
                    namespace=GLOBAL_NAMESPACE,
                    service=EVENT_SERVICE,
                    name="root_rotated",
                    payload={"root_version": current, "rewrapped": rewrapped},
                )
            )
            await uow.commit()
        log.info("root key rotated", root_version=current, rewrapped=rewrapped)
        return RootRotation(root_version=current, rewrapped=rewrapped, destroyed=destroyed)

    async def signing_key(
        self, *, namespace: str, not_before: datetime | None = None
    ) -> SigningKey:
        """The namespace's active ES256 private key, made on first use; `not_before` as in seal."""
        cached = self._signing.get(namespace)
        if cached is not None and (not_before is None or cached.created_at >= not_before):
            return cached
        async with self._uow(write=False) as uow:
            pair = await VaultRepository(uow.connection).active_key_pair(
                namespace, SIGNING_ALGORITHM
            )
        if pair is None:
            pair = await self._create_key_pair(namespace, retire_current=False)
        elif not_before is not None and pair.created_at < not_before:
            pair = await self.rotate_signing_key(namespace=namespace)
        pem = await self.unseal(
            namespace=namespace, sealed=pair.private_sealed, aad=_key_pair_aad(pair.kid)
        )
        key = SigningKey(
            kid=pair.kid, algorithm=pair.algorithm, private_pem=pem, created_at=pair.created_at
        )
        self._signing.put(namespace, key)
        return key

    async def rotate_signing_key(self, *, namespace: str) -> KeyPair:
        """Sign with a new key from now on; the old public key stays listed for verification."""
        pair = await self._create_key_pair(namespace, retire_current=True)
        self._signing.drop(lambda cached: cached == namespace)
        return pair

    async def key_pairs(self, *, namespace: str) -> list[KeyPair]:
        """The namespace's key pairs, newest first (public halves are what callers show)."""
        async with self._uow(write=False) as uow:
            return list(await VaultRepository(uow.connection).key_pairs(namespace))

    async def forget(self, event: Event) -> None:
        """Drop cached keys of a namespace whose keys changed or went (every replica)."""
        namespace = event.namespace
        self._active.drop(lambda cached: cached == namespace)
        self._ciphers.drop(lambda cached: cached[0] == namespace)
        self._signing.drop(lambda cached: cached == namespace)

    async def purge_namespace(self, event: Event) -> None:
        """Crypto-shred a deleted namespace: destroy every key it had when it was deleted."""
        async with self._uow() as uow:
            removed = await VaultRepository(uow.connection).purge(
                event.namespace, created_before=event.occurred_at
            )
            await uow.commit()
        await self.forget(event)
        log.info("namespace keys destroyed", namespace=event.namespace, keys=removed)

    async def _create_key_pair(self, namespace: str, *, retire_current: bool) -> KeyPair:
        jwk = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": SIGNING_ALGORITHM})
        kid = jwk.thumbprint()
        public = {**jwk.as_dict(private=False), "kid": kid}
        sealed = await self.seal(
            namespace=namespace, plaintext=jwk.as_pem(private=True), aad=_key_pair_aad(kid)
        )
        now = utcnow()
        pair = KeyPair(namespace, kid, SIGNING_ALGORITHM, True, public, sealed, now, None)
        async with self._uow() as uow:
            repository = VaultRepository(uow.connection)
            if retire_current:
                await repository.retire_key_pair(namespace, SIGNING_ALGORITHM, at=now)
            if not await repository.add_key_pair(pair):
                # Another replica created the first key pair at the same moment: use that one.
                existing = await repository.active_key_pair(namespace, SIGNING_ALGORITHM)
                assert existing is not None
                return existing
            if retire_current:
                uow.emit(
                    Event(
                        namespace=namespace,
                        service=EVENT_SERVICE,
                        name="signing_key_rotated",
                        payload={"kid": kid},
                    )
                )
            await uow.commit()
        return pair

    async def _active_cipher(
        self, namespace: str, not_before: datetime | None
    ) -> tuple[str, AESGCM]:
        cached = self._active.get(namespace)
        if cached is not None and (not_before is None or cached[1] >= not_before):
            cipher = self._ciphers.get((namespace, cached[0]))
            if cipher is not None:
                return cached[0], cipher
        await self._require_open()
        async with self._uow(write=False) as uow:
            key = await VaultRepository(uow.connection).active_data_key(namespace)
        if key is None:
            key = await self._create_data_key(namespace)
        elif not_before is not None and key.created_at < not_before:
            # The namespace was deleted and created again before its purge ran: new keys.
            await self.rotate_data_key(namespace=namespace)
            return await self._active_cipher(namespace, not_before)
        cipher = await self._unwrap(key)
        self._active.put(namespace, (key.key_id, key.created_at))
        return key.key_id, cipher

    async def _create_data_key(self, namespace: str) -> DataKey:
        key_id, secret = model.new_data_key()
        root_version, wrapped = await self._keystore.wrap(
            secret, aad=model.wrap_aad(namespace, key_id)
        )
        key = DataKey(namespace, key_id, True, wrapped, root_version, utcnow())
        async with self._uow() as uow:
            repository = VaultRepository(uow.connection)
            if not await repository.add_data_key(key):
                raced = await repository.active_data_key(namespace)
                assert raced is not None
                return raced
            await uow.commit()
        self._ciphers.put((namespace, key_id), AESGCM(secret))
        return key

    async def _cipher(self, namespace: str, key_id: str) -> AESGCM:
        cipher = self._ciphers.get((namespace, key_id))
        if cipher is not None:
            return cipher
        await self._require_open()
        async with self._uow(write=False) as uow:
            key = await VaultRepository(uow.connection).data_key(namespace, key_id)
        if key is None:
            raise NotFound(
                f"the data key that sealed this data no longer exists in namespace "
                f"{namespace!r}: it was destroyed (namespace deleted), so the data is unreadable"
            )
        return await self._unwrap(key)

    async def _unwrap(self, key: DataKey) -> AESGCM:
        secret = await self._keystore.unwrap(
            key.root_version, key.wrapped, aad=model.wrap_aad(key.namespace, key.key_id)
        )
        cipher = AESGCM(secret)
        self._ciphers.put((key.namespace, key.key_id), cipher)
        return cipher

    async def _require_open(self) -> None:
        if self._sealed_reason is None:
            return
        if time.monotonic() - self._last_attempt >= REOPEN_SECONDS:
            await self._open()
        if self._sealed_reason is not None:
            raise Sealed(f"the vault is sealed: {self._sealed_reason}")

    async def _open(self) -> None:
        async with self._open_lock:
            self._last_attempt = time.monotonic()
            async with self._uow(write=False) as uow:
                has_keys = await VaultRepository(uow.connection).has_data_keys()
            try:
                # A root key is only ever created for a vault that has nothing to lose.
                await self._keystore.open(create=not has_keys)
            except Sealed as exc:
                if self._sealed_reason != exc.detail:
                    log.warning("vault sealed", reason=exc.detail)
                self._sealed_reason = exc.detail
                return
            if self._sealed_reason is not None:
                log.info("vault unsealed", keystore=self._keystore.backend)
            self._sealed_reason = None


def _key_pair_aad(kid: str) -> bytes:
    return b"key-pair\x00" + kid.encode()

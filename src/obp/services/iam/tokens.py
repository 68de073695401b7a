"""Access tokens: JWTs signed ES256 with the namespace's own key from the vault.

A token's header names the key (`kid`, the JWK thumbprint) and its claims name the
namespace (`ns`), so a verifier looks up that namespace's public keys and nothing else: a
token of namespace A with `ns` changed to B no longer matches its signature, and B's keys
do not know A's `kid` either way.

Rotation: the vault retires the old key pair and signs with a new one. Tokens the old key
signed stay valid until they expire, so the old public key stays in the JWKS (and keeps
verifying here) for `TokenSettings.key_retention` after it was retired: the token lifetime,
plus the leeway, plus a margin for replicas that learn of the rotation a little late and
sign with the old key meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey

from obp.kernel.clock import utcnow
from obp.kernel.errors import Unauthorized
from obp.kernel.events import Event
from obp.kernel.names import is_valid_namespace_name
from obp.services.vault import KeyPair, SigningKey

ALGORITHM = "ES256"
# Far above any token we issue; refuses megabyte "tokens" before any parsing.
MAX_TOKEN_LENGTH = 8192
# Claims the issuer sets itself; `extra` may not override them.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "ns", "name", "iat", "nbf", "exp", "jti"})

K = TypeVar("K")
V = TypeVar("V")


class KeySource(Protocol):
    """The two vault methods tokens need (`VaultService` has them)."""

    async def signing_key(
        self, *, namespace: str, not_before: datetime | None = None
    ) -> SigningKey: ...

    async def key_pairs(self, *, namespace: str) -> list[KeyPair]: ...


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """How access tokens are issued and checked.

    `issuer_for(namespace)` is the namespace's issuer URL, e.g.
    `https://obp.example.com/api/v1/namespaces/acme`; the `iss` claim must equal it.
    """

    issuer_for: Callable[[str], str]
    lifetime_seconds: int = 600
    leeway_seconds: int = 30
    # How late another replica may still sign with a key retired elsewhere (bus latency).
    rotation_margin_seconds: int = 60
    # How long a verifier trusts its copy of a namespace's public keys.
    key_cache_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.lifetime_seconds < 1:
            raise ValueError(f"lifetime_seconds must be positive, got {self.lifetime_seconds}")
        if self.leeway_seconds < 0 or self.rotation_margin_seconds < 0:
            raise ValueError("leeway_seconds and rotation_margin_seconds must not be negative")
        if self.key_cache_seconds < 0:
            raise ValueError(
                f"key_cache_seconds must not be negative, got {self.key_cache_seconds}"
            )

    @property
    def lifetime(self) -> timedelta:
        """How long an access token is valid."""
        return timedelta(seconds=self.lifetime_seconds)

    @property
    def key_retention(self) -> timedelta:
        """How long a retired public key still verifies, and stays in the JWKS."""
        return timedelta(
            seconds=self.lifetime_seconds + self.leeway_seconds + self.rotation_margin_seconds
        )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and what the caller tells the client about it."""

    token: str
    expires_at: datetime
    jti: str
    issued_at: datetime
    kid: str


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says."""

    namespace: str
    identity_id: str
    name: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    # Any claim beyond the standard ones (what `issue(extra=...)` added).
    extra: Mapping[str, Any] = field(default_factory=dict)


def usable_key_pairs(
    pairs: list[KeyPair], *, now: datetime, max_token_lifetime: timedelta
) -> list[KeyPair]:
    """The ES256 pairs whose public keys still verify: the active ones, and retired ones
    that may have signed a token which has not expired yet."""
    return [
        pair
        for pair in pairs
        if pair.algorithm == ALGORITHM
        and (
            pair.active
            or (pair.retired_at is not None and pair.retired_at + max_token_lifetime > now)
        )
    ]


def jwks(pairs: list[KeyPair], *, now: datetime, max_token_lifetime: timedelta) -> dict[str, Any]:
    """The JWK set to publish: active keys, and retired ones until their last token expires.

    Pass `TokenSettings.key_retention` as `max_token_lifetime`.
    """
    keys = []
    for pair in usable_key_pairs(pairs, now=now, max_token_lifetime=max_token_lifetime):
        keys.append({**pair.public_jwk, "kid": pair.kid, "alg": ALGORITHM, "use": "sig"})
    return {"keys": keys}


class _Lru(Generic[K, V]):
    """A small bounded LRU map."""

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

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


class TokenIssuer:
    """Signs access tokens with the namespace's active vault key."""

    def __init__(
        self,
        vault: KeySource,
        settings: TokenSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        cache_size: int = 1024,
    ) -> None:
        self._vault = vault
        self._settings = settings
        self._clock = clock
        # Parsed private keys by (namespace, kid): parsing PEM on every token costs more
        # than signing. The vault caches the same keys already; this holds no more.
        self._keys: _Lru[tuple[str, str], ECKey] = _Lru(cache_size)

    async def issue(
        self,
        *,
        namespace: str,
        identity_id: str,
        name: str,
        not_before: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """A signed access token for the identity.

        `not_before` is the namespace's creation time, passed on to the vault so a key left
        over from a deleted namespace of the same name is never used. `extra` adds claims;
        it cannot override the standard ones (`ValueError`).
        """
        clash = RESERVED_CLAIMS.intersection(extra or {})
        if clash:
            raise ValueError(f"extra claims may not override {', '.join(sorted(clash))}")
        signing = await self._vault.signing_key(namespace=namespace, not_before=not_before)
        if signing.algorithm != ALGORITHM:
            raise ValueError(f"the signing key is {signing.algorithm}, not {ALGORITHM}")
        key = self._private_key(namespace, signing)
        issued = int(self._clock().timestamp())
        expires = issued + self._settings.lifetime_seconds
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self._settings.issuer_for(namespace),
            "sub": identity_id,
            "ns": namespace,
            "name": name,
            "iat": issued,
            "exp": expires,
            "jti": jti,
        }
        token = jwt.encode(
            {"alg": ALGORITHM, "kid": signing.kid}, claims, key, algorithms=[ALGORITHM]
        )
        return IssuedToken(
            token=token,
            expires_at=_datetime(expires),
            jti=jti,
            issued_at=_datetime(issued),
            kid=signing.kid,
        )

    def _private_key(self, namespace: str, signing: SigningKey) -> ECKey:
        cached = self._keys.get((namespace, signing.kid))
        if cached is None:
            cached = ECKey.import_key(signing.private_pem)
            self._keys.put((namespace, signing.kid), cached)
        return cached


@dataclass(frozen=True, slots=True)
class _PublicKeys:
    fetched_at: float  # monotonic
    # kid -> (key, when it stops verifying; None while active)
    keys: dict[str, tuple[ECKey, datetime | None]]


class TokenVerifier:
    """Verifies access tokens against the public keys of the namespace they name.

    Each namespace's public keys are cached in this process for `key_cache_seconds`; a token
    signed by a key the cache does not know triggers one refetch (concurrent ones share it),
    so a rotation made on another replica is seen at once. Wire `forget` to the vault's
    `signing_key_rotated` and the namespace `deleted` events to drop a copy earlier.

    A forged token with a made-up `kid` (or `ns`) costs one indexed read of that namespace's
    key pairs, shared by every concurrent request for the namespace, and no signature check.
    """

    def __init__(
        self,
        vault: KeySource,
        settings: TokenSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        cache_size: int = 10_000,
    ) -> None:
        self._vault = vault
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._cache: _Lru[str, _PublicKeys] = _Lru(cache_size)
        self._inflight: dict[str, asyncio.Task[_PublicKeys]] = {}
        self._epoch = 0  # bumped by forget, so a fetch that started before it is not kept

    async def verify(self, token: str) -> Claims:
        """The token's claims if it is authentic, unexpired and from its namespace's issuer.

        Otherwise `Unauthorized` saying why (the token itself is never repeated).
        """
        header, unverified = _peek(token)
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"the access token is not signed with {ALGORITHM}")
        kid = header.get("kid")
        namespace = unverified.get("ns")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the access token is malformed: its header names no key (kid)")
        if not isinstance(namespace, str) or not is_valid_namespace_name(namespace):
            raise Unauthorized("the access token is malformed: it names no valid namespace (ns)")
        now = self._clock()
        key = await self._public_key(namespace, kid, now)
        if key is None:
            raise Unauthorized(
                "the access token was signed by a key its namespace does not have "
                "(unknown, or retired longer ago than tokens live)"
            )
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except BadSignatureError:
            raise Unauthorized("the access token's signature is not valid") from None
        except JoseError:
            raise Unauthorized("the access token is malformed") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=self._settings.leeway_seconds,
            iss={"essential": True, "value": self._settings.issuer_for(namespace)},
            ns={"essential": True, "value": namespace},
            sub={"essential": True},
            name={"essential": True},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthorized("the access token has expired") from None
        except MissingClaimError as exc:
            raise Unauthorized(f"the access token lacks the claim(s) {exc.claim}") from None
        except ClaimError as exc:
            reason = "is not this namespace's issuer" if exc.claim == "iss" else "is not valid"
            raise Unauthorized(f"the access token's claim {exc.claim!r} {reason}") from None
        if not isinstance(claims["name"], str):
            raise Unauthorized("the access token's claim 'name' is not valid")
        try:
            issued_at, expires_at = _datetime(claims["iat"]), _datetime(claims["exp"])
        except (OverflowError, OSError, ValueError):
            raise Unauthorized("the access token's times are out of range") from None
        return Claims(
            namespace=namespace,
            identity_id=claims["sub"],
            name=claims["name"],
            jti=claims["jti"],
            issued_at=issued_at,
            expires_at=expires_at,
            extra={k: v for k, v in claims.items() if k not in RESERVED_CLAIMS},
        )

    async def forget(self, event: Event) -> None:
        """Drop the cached public keys of the event's namespace (rotation, deletion)."""
        self._epoch += 1
        self._cache.pop(event.namespace)
        self._inflight.pop(event.namespace, None)

    async def _public_key(self, namespace: str, kid: str, now: datetime) -> ECKey | None:
        keys = self._cache.get(namespace)
        if (
            keys is None
            or self._monotonic() - keys.fetched_at >= self._settings.key_cache_seconds
            or kid not in keys.keys
        ):
            # Expired, never fetched, or a key we have not seen: rotation elsewhere, perhaps.
            keys = await self._fetch(namespace)
        found = keys.keys.get(kid)
        if found is None:
            return None
        key, usable_until = found
        if usable_until is not None and now >= usable_until:
            return None
        return key

    async def _fetch(self, namespace: str) -> _PublicKeys:
        task = self._inflight.get(namespace)
        if task is None:
            task = asyncio.create_task(self._load(namespace, self._epoch))
            self._inflight[namespace] = task
            task.add_done_callback(lambda done: self._landed(namespace, done))
        # Shielded: one caller giving up (a client hanging up) does not cancel the others'.
        return await asyncio.shield(task)

    def _landed(self, namespace: str, task: asyncio.Task[_PublicKeys]) -> None:
        if self._inflight.get(namespace) is task:
            del self._inflight[namespace]
        if not task.cancelled():
            task.exception()  # retrieved: the awaiting callers got it already

    async def _load(self, namespace: str, epoch: int) -> _PublicKeys:
        pairs = await self._vault.key_pairs(namespace=namespace)
        retention = self._settings.key_retention
        keys: dict[str, tuple[ECKey, datetime | None]] = {}
        for pair in pairs:
            if pair.algorithm != ALGORITHM or (not pair.active and pair.retired_at is None):
                continue
            until = None if pair.active or pair.retired_at is None else pair.retired_at + retention
            keys[pair.kid] = (ECKey.import_key(pair.public_jwk), until)
        loaded = _PublicKeys(fetched_at=self._monotonic(), keys=keys)
        if epoch == self._epoch:
            self._cache.put(namespace, loaded)
        return loaded


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, unverified: only to pick the key to verify with."""
    malformed = Unauthorized("the access token is malformed")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise malformed
    parts = token.split(".")
    if len(parts) != 3:
        raise malformed
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, binascii.Error, RecursionError):
        raise malformed from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise malformed
    return header, claims


def _b64decode(part: str) -> bytes:
    if not part or not part.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)

"""The HSM key store: AES-256 root keys inside a PKCS#11 token, used there, never extracted."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from obp.kernel.errors import ConfigurationError, Sealed, TamperedError

DEFAULT_LABEL_PREFIX = "obp-root-"
PIN_VARIABLE = "OBP_KEYSTORE_PIN"
NONCE_BYTES = 12
TAG_BITS = 128
# Other processes rotate too: `wrap` looks for a newer root key at most this often.
RESCAN_SECONDS = 1.0
_VERSION = re.compile(r"[0-9]{6,}")
_OPTIONS = ("token", "pin", "pin-env")
# What SoftHSM2 (CKR_GENERAL_ERROR!) and other tokens answer when a GCM tag does not verify.
_TAMPERED = (p11.GeneralError, p11.EncryptedDataInvalid, p11.EncryptedDataLenRange)
# The key object was destroyed, perhaps by another process: look the keys up again.
_STALE = (p11.ObjectHandleInvalid, p11.KeyHandleInvalid)
_SALT = os.urandom(16)
_SECRET_AES = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
T = TypeVar("T")


class _RootKey(Protocol):
    """What we use of a key object (python-pkcs11 adds encrypt/decrypt as runtime mixins)."""

    def encrypt(self, data: bytes, **kwargs: Any) -> bytes | Iterator[bytes]: ...
    def decrypt(self, data: bytes, **kwargs: Any) -> bytes | Iterator[bytes]: ...
    def destroy(self) -> None: ...
    def __getitem__(self, key: Attribute) -> Any: ...


class _Connection:
    """The one logged-in session per (library, token) in this process.

    PKCS#11 login state belongs to the process, not the session: a second login fails with
    USER_ALREADY_LOGGED_IN whatever the PIN, and a logout ends every session's login. So stores
    on one token share this session, the last to close logs out, and a lock serialises its use
    (sessions are not thread-safe).
    """

    def __init__(self, session: pkcs11.Session, pin: str) -> None:
        self.session = session
        self.pin_digest = _digest(pin)
        self.lock = threading.Lock()
        self.users = 1


_connections: dict[tuple[str, str], _Connection] = {}
_connections_lock = threading.Lock()


def _digest(pin: str) -> bytes:
    return hmac.digest(_SALT, pin.encode(), hashlib.sha256)


def _connect(library: str, label: str, pin: str) -> _Connection:
    """Share this process's session on the token, or log in and open one (blocking)."""
    with _connections_lock:
        connection = _connections.get((library, label))
        if connection is not None:
            if not hmac.compare_digest(connection.pin_digest, _digest(pin)):
                raise Sealed(f"key store: the PIN for token {label!r} is incorrect")
            connection.users += 1
            return connection
        try:
            lib = pkcs11.lib(library)  # cached per path by python-pkcs11, initialised once
        except p11.PKCS11Error as exc:  # its message names the path and the loader's reason
            raise Sealed(f"key store: cannot load the PKCS#11 library ({_name(exc)})") from None
        try:
            try:
                token = lib.get_token(token_label=label)
            except p11.NoSuchToken:
                if any(known == library for known, _ in _connections):
                    raise
                # A library sees only the tokens that existed when it was initialised.
                lib.reinitialize()
                token = lib.get_token(token_label=label)
            session = token.open(rw=True, user_pin=pin)
        except p11.NoSuchToken:
            labels = ", ".join(repr(t.label) for t in lib.get_tokens()) or "none"
            raise Sealed(f"key store: no token labelled {label!r} (tokens: {labels})") from None
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise Sealed(f"key store: the PIN for token {label!r} is incorrect") from None
        except p11.PinLocked:
            raise Sealed(f"key store: the user PIN of token {label!r} is locked") from None
        except p11.PKCS11Error as exc:
            # The library's own message at most (a path), never the URL with its PIN.
            raise Sealed(f"key store: token {label!r} in {library}: {_name(exc)}") from None
        connection = _connections[library, label] = _Connection(session, pin)
        return connection


def _release(library: str, label: str, connection: _Connection) -> None:
    with _connections_lock:
        connection.users -= 1
        if connection.users > 0:
            return
        del _connections[library, label]
    # Only the session: finalising the library would end other tokens' sessions too.
    with connection.lock, contextlib.suppress(p11.PKCS11Error):
        connection.session.close()  # a dead HSM has closed it already


def _name(exc: BaseException) -> str:
    # python-pkcs11's exceptions mostly have no message: the class names the CKR_ code.
    return str(exc) or type(exc).__name__


class Pkcs11KeyStore:
    """Root keys as non-extractable AES-256 objects on a PKCS#11 token (an HSM)."""

    def __init__(
        self, library: str, token: str, pin: str, *, label_prefix: str = DEFAULT_LABEL_PREFIX
    ) -> None:
        self._library = library
        self._token = token
        self._pin = pin
        self._prefix = label_prefix
        self._connection: _Connection | None = None
        # Version -> key object, oldest first; replaced whole by `_scan`, so reads need no lock.
        self._keys: dict[str, _RootKey] = {}
        self._scanned_at = 0.0

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(library={self._library!r}, token={self._token!r})"

    @property
    def backend(self) -> str:
        """Always `pkcs11`."""
        return "pkcs11"

    @property
    def current_version(self) -> str:
        """The root key version `wrap` uses: the highest on the token."""
        self._require_open()
        if not self._keys:
            raise Sealed(f"key store: token {self._token!r} holds no root key ({self._prefix}*)")
        return next(reversed(self._keys))

    async def open(self, *, create: bool) -> None:
        """Log in to the token; with `create`, generate the first root key if there is none."""
        await asyncio.to_thread(self._open, create)

    async def ping(self) -> None:
        """Raise `Sealed` unless the store is open and the token answers."""

        def check() -> None:
            self._scan()  # also how a rotation elsewhere reaches an idle process
            self._key(self.current_version)[Attribute.VALUE_LEN]  # session, login and key work

        await self._run(check)

    async def versions(self) -> list[str]:
        """Every root key version on the token, oldest first."""
        await self._run(self._scan)
        return list(self._keys)

    async def wrap(self, key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """AES-256-GCM inside the HSM under the current root key: (version, IV + ciphertext)."""
        nonce = os.urandom(NONCE_BYTES)
        params = pkcs11.GCMParams(nonce, aad, TAG_BITS)

        def encrypt() -> tuple[str, bytes]:
            if time.monotonic() - self._scanned_at > RESCAN_SECONDS:
                self._scan()
            version = self.current_version
            data = self._key(version).encrypt(
                key, mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
            return version, nonce + cast(bytes, data)

        return await self._run(encrypt)

    async def unwrap(self, version: str, wrapped: bytes, *, aad: bytes) -> bytes:
        """The key `wrap` returned; `Sealed` if its root key is gone, `TamperedError` if altered."""
        if len(wrapped) < NONCE_BYTES + TAG_BITS // 8:
            raise TamperedError("wrapped key is too short to be genuine")
        params = pkcs11.GCMParams(wrapped[:NONCE_BYTES], aad, TAG_BITS)
        ciphertext = wrapped[NONCE_BYTES:]

        def decrypt() -> bytes:
            root = self._key(version)
            try:
                data = root.decrypt(ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            except _TAMPERED:
                raise TamperedError(
                    "wrapped key failed authentication: altered, or wrapped for another context"
                ) from None
            return cast(bytes, data)

        return await self._run(decrypt)

    async def rotate(self) -> str:
        """Generate a new root key on the token and make it current; its version."""
        return await self._run(self._rotate)

    async def destroy(self, version: str) -> None:
        """Delete a root key object for good; the current one is refused (`ValueError`)."""
        await self._run(lambda: self._destroy(version))

    async def close(self) -> None:
        """Release this store's share of the token session (the last store logs out)."""
        connection, self._connection, self._keys = self._connection, None, {}
        if connection is not None:
            await asyncio.to_thread(_release, self._library, self._token, connection)

    def _require_open(self) -> _Connection:
        if self._connection is None:
            raise Sealed("key store: not open")
        return self._connection

    async def _run(self, call: Callable[[], T]) -> T:
        """Run `call` in a thread holding the session lock; once more if a key went stale."""
        connection = self._require_open()

        def locked() -> T:
            with connection.lock:
                try:
                    try:
                        return call()
                    except _STALE:
                        self._scan()
                        return call()
                except p11.PKCS11Error as exc:
                    raise Sealed(f"key store: the HSM failed: {_name(exc)}") from None

        return await asyncio.to_thread(locked)

    def _open(self, create: bool) -> None:
        if self._connection is not None:
            return
        connection = _connect(self._library, self._token, self._pin)
        try:
            with connection.lock:
                self._connection = connection
                self._scan()
                if not self._keys and create:
                    self._rotate()
            self.current_version  # noqa: B018 - raises Sealed when the token holds no root key
        except BaseException:
            self._connection, self._keys = None, {}
            _release(self._library, self._token, connection)
            raise

    def _scan(self) -> None:
        """Look up the root key objects on the token (another process may have changed them)."""
        found: dict[str, _RootKey] = {}
        for obj in self._require_open().session.get_objects(_SECRET_AES):
            label = obj[Attribute.LABEL]
            version = label[len(self._prefix) :] if label.startswith(self._prefix) else ""
            usable = isinstance(obj, pkcs11.EncryptMixin) and isinstance(obj, pkcs11.DecryptMixin)
            if usable and _VERSION.fullmatch(version):
                found[version] = cast(_RootKey, obj)
        self._keys = {v: found[v] for v in sorted(found, key=int)}
        self._scanned_at = time.monotonic()

    def _key(self, version: str) -> _RootKey:
        if version not in self._keys:
            self._scan()  # perhaps another process rotated
        key = self._keys.get(version)
        if key is None:
            raise Sealed(f"key store: root key version {version!r} is not in the key store")
        return key

    def _rotate(self) -> str:
        session = self._require_open().session
        self._scan()
        for _ in range(5):
            version = f"{int(next(reversed(self._keys), '0')) + 1:06d}"  # sorts as text too
            label = self._prefix + version
            key = session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.PRIVATE: True,  # invisible without login
                    Attribute.SENSITIVE: True,  # its value can never be read
                    Attribute.EXTRACTABLE: False,  # nor wrapped out of the token
                },
            )
            same = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
            if len(list(session.get_objects(same))) == 1:
                self._scan()
                return version
            # Another process made this version at the same moment. Of two racing, the later
            # (or both) sees two objects, never neither: step aside and try the next version.
            key.destroy()
            self._scan()
        raise Sealed("key store: could not rotate: other processes keep rotating at once")

    def _destroy(self, version: str) -> None:
        self._scan()
        if version == self.current_version:
            raise ValueError(
                f"root key version {version!r} is current: rotate before destroying it"
            )
        key = self._keys.pop(version, None)
        if key is not None:  # already gone: destroying is idempotent
            key.destroy()


def create(url: str, **_: object) -> Pkcs11KeyStore:
    """A Pkcs11KeyStore from `pkcs11:///path/to/library.so?token=LABEL[&pin=…|&pin-env=VAR]`."""
    parts = urlsplit(url)
    library = unquote(parts.path)
    if parts.scheme.lower() != "pkcs11" or parts.netloc or not library.startswith("/"):
        raise ConfigurationError(
            "OBP_KEYSTORE_URL: a PKCS#11 key store is "
            "pkcs11:///absolute/path/to/library.so?token=LABEL"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"OBP_KEYSTORE_URL: PKCS#11 option {unknown[0]!r} is not accepted; "
            f"accepted: {', '.join(_OPTIONS)}"
        )
    token = options.get("token", "")
    if not token:
        raise ConfigurationError("OBP_KEYSTORE_URL: name the token with ?token=LABEL")
    pin = options.get("pin")
    if pin is None:
        variable = options.get("pin-env") or PIN_VARIABLE
        pin = os.environ.get(variable, "")
        if not pin:
            raise ConfigurationError(
                f"OBP_KEYSTORE_URL: the PIN of token {token!r} is not set: set {variable}"
            )
    return Pkcs11KeyStore(library, token, pin)

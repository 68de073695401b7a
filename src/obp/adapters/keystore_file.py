"""The embedded key store: 256-bit root keys in a master key file (`file://`, mode 0600)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from obp.kernel.errors import ConfigurationError, Sealed, TamperedError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
DEFAULT_NAME = "master.key"
_VERSION = re.compile(r"f[1-9][0-9]{0,17}")
_HEADER = (
    "# OBP vault master key file: root keys, one per line, the last one current.\n"
    "# Keep it secret (mode 0600), back it up, and never edit it by hand.\n"
)


class FileKeyStore:
    """Root keys in one file next to the data, read into memory at open (the embedded default)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Version -> key in file order, so the last is current; empty while not open. Replaced
        # whole, never changed in place, as rotate and destroy run in a worker thread.
        self._keys: dict[str, bytes] = {}
        # What the file looked like when read: another process's rotate or destroy changes it.
        self._signature: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self._path)!r})"

    @property
    def backend(self) -> str:
        """Always `file`."""
        return "file"

    @property
    def path(self) -> Path:
        """The master key file."""
        return self._path

    @property
    def current_version(self) -> str:
        """The root key version `wrap` uses."""
        return self._require_open()

    async def open(self, *, create: bool) -> None:
        """Read the root keys; with `create`, write a first one if the file does not exist."""
        await asyncio.to_thread(self._open, create)

    async def ping(self) -> None:
        """Raise `Sealed` unless the store is open and its file is still intact."""
        self._require_open()
        self._refresh()

    async def versions(self) -> list[str]:
        """Every root key version in the file, oldest first."""
        self._require_open()
        self._refresh()
        return list(self._keys)

    async def wrap(self, key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """AES-256-GCM under the current root key: (version, nonce + ciphertext + tag)."""
        self._require_open()
        self._refresh()
        keys = self._keys
        version = next(reversed(keys))
        nonce = os.urandom(NONCE_BYTES)
        return version, nonce + AESGCM(keys[version]).encrypt(nonce, key, aad)

    async def unwrap(self, version: str, wrapped: bytes, *, aad: bytes) -> bytes:
        """The key `wrap` returned; `Sealed` if its root key is gone, `TamperedError` if altered."""
        self._require_open()
        if version not in self._keys:
            self._refresh(force=True)  # perhaps another process rotated since we read the file
        root = self._keys.get(version)
        if root is None:
            raise Sealed(f"key store: root key version {version!r} is not in the key store")
        if len(wrapped) < NONCE_BYTES + TAG_BYTES:
            raise TamperedError("wrapped key is too short to be genuine")
        try:
            return AESGCM(root).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise TamperedError(
                "wrapped key failed authentication: altered, or wrapped for another context"
            ) from None

    async def rotate(self) -> str:
        """Append a new root key to the file and make it current; its version."""
        self._require_open()
        return await asyncio.to_thread(self._rotate)

    async def destroy(self, version: str) -> None:
        """Remove a root key version from the file; the current one is refused (`ValueError`)."""
        self._require_open()
        await asyncio.to_thread(self._destroy, version)

    async def close(self) -> None:
        """Forget the keys held in memory."""
        self._keys = {}
        self._signature = None

    def _require_open(self) -> str:
        if not self._keys:
            raise Sealed("key store: not open")
        return next(reversed(self._keys))

    def _open(self, create: bool) -> None:
        if create and not self._path.exists():
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self._locked():
                # A writer that ignores the lock may still win the race: then use its key.
                if not self._path.exists():
                    with contextlib.suppress(FileExistsError):
                        self._write({_next_version([]): os.urandom(KEY_BYTES)}, exclusive=True)
        self._load()

    def _rotate(self) -> str:
        with self._locked():
            self._load()  # the file may hold versions another process added
            version = _next_version(list(self._keys))
            self._write({**self._keys, version: os.urandom(KEY_BYTES)}, exclusive=False)
            self._load()
        return version

    def _destroy(self, version: str) -> None:
        with self._locked():
            self._load()
            if version == next(reversed(self._keys)):
                raise ValueError(
                    f"root key version {version!r} is current: rotate before destroying it"
                )
            if version not in self._keys:
                return  # already gone: destroying is idempotent
            self._write({v: k for v, k in self._keys.items() if v != version}, exclusive=False)
            self._load()

    def _refresh(self, *, force: bool = False) -> None:
        """Re-read the file if it changed since we read it (a rotate or destroy elsewhere)."""
        try:
            info = self._path.stat()
        except OSError as exc:
            raise Sealed(
                f"key store: master key file {self._path} is gone ({exc.strerror}); restore it "
                "from your backup now: this process still holds the keys, a restart will not"
            ) from None
        if force or _signature(info) != self._signature:
            try:
                self._load()
            except ConfigurationError as exc:
                raise Sealed(exc.detail) from None

    def _load(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise Sealed(
                f"key store: master key file {self._path} is missing (OBP_KEYSTORE_URL); "
                "restore it from your backup"
            ) from None
        except OSError as exc:
            raise Sealed(f"key store: cannot read {self._path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigurationError(f"key store: {self._path} is not a regular file")
            if info.st_mode & 0o077:
                raise ConfigurationError(
                    f"key store: master key file {self._path} has mode "
                    f"{stat.S_IMODE(info.st_mode):04o}, readable or writable by others; "
                    f"run `chmod 600 {self._path}` (the platform will not start until then)"
                )
            keys = _parse(self._path, file.read())
        self._keys = keys
        self._signature = _signature(info)

    def _write(self, keys: dict[str, bytes], *, exclusive: bool) -> None:
        """Write `keys` to a temporary file, flush it to disk, then put it in place atomically."""
        text = _HEADER + "".join(f"{v} {_encode(k)}\n" for v, k in keys.items())
        temporary = self._path.with_name(self._path.name + ".tmp")
        # The lock is held, so a leftover temporary is from a crash: overwrite it.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a leftover file
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            # link() fails if the file exists, so a first key is never written over another.
            try:
                os.link(temporary, self._path)
            finally:
                os.unlink(temporary)
        else:
            os.replace(temporary, self._path)
        _fsync_directory(self._path.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers across processes with a lock file (the key file itself is replaced)."""
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _parse(path: Path, data: bytes) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise Sealed(f"key store: master key file {path} is corrupt (not text)") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        key = _decode(fields[1]) if len(fields) == 2 else None
        if key is None or not _VERSION.fullmatch(fields[0]):
            raise Sealed(
                f"key store: master key file {path} is corrupt at line {number} "
                "(expected `<version> <base64url 256-bit key>`); restore it from your backup"
            )
        if keys and _number(fields[0]) <= _number(next(reversed(keys))):
            raise Sealed(
                f"key store: master key file {path} is corrupt at line {number} "
                "(versions out of order); restore it from your backup"
            )
        keys[fields[0]] = key
    if not keys:
        raise Sealed(
            f"key store: master key file {path} holds no root key; restore it from your backup"
        )
    return keys


def _encode(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def _decode(text: str) -> bytes | None:
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def _number(version: str) -> int:
    return int(version[1:])


def _next_version(versions: list[str]) -> str:
    return f"f{max((_number(v) for v in versions), default=0) + 1}"


def _signature(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_mtime_ns, info.st_size


def _fsync_directory(directory: Path) -> None:
    # Without this a rename or new link can vanish after a power cut, though the data was synced.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create(url: str, *, data_dir: Path, **_: object) -> FileKeyStore:
    """A FileKeyStore from `file://` (data_dir/master.key) or `file:///absolute/path`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ConfigurationError(f"key store URL must start with file://, got {parts.scheme!r}")
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigurationError(
            "OBP_KEYSTORE_URL: a file key store is `file://` (master.key in the data directory) "
            "or `file:///absolute/path/to/master.key`, without host or options"
        )
    path = unquote(parts.path)
    if not path or path == "/":
        return FileKeyStore(data_dir / DEFAULT_NAME)
    return FileKeyStore(Path(path))

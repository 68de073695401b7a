"""The embedded blob store: one file per object under a directory (`file:///absolute/path`).

An upload is written to a file of its own in `<root>/~uploads`, flushed to disk, renamed into
place and the folder flushed too, so a `put` that returned survives a power cut and one that
did not leaves no object. Keys cannot contain `~`, so nothing in the tree is mistaken for an
object. Disk work runs in threads, a chunk at a time, so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import stat
import time
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from obp.adapters.blobs_keys import CHUNK_BYTES, check_key, check_prefix, check_range
from obp.kernel.errors import ConfigurationError, Conflict, NotFound, Unavailable

T = TypeVar("T")

DEFAULT_FOLDER = "blobs"
UPLOADS = "~uploads"
# An upload file not written to for this long was left by a crashed process, so `start` removes
# it. Long, because a slow client may take minutes per chunk and other workers share the folder;
# the files service removes its own crashed uploads by key well before this (lease sweep).
STALE_SECONDS = 24 * 3600.0


class FileBlobStore:
    """A BlobStore on a local directory (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._uploads = root / UPLOADS

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self._root)!r})"

    @property
    def backend(self) -> str:
        """Always `file`."""
        return "file"

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    async def start(self) -> None:
        """Create the directory and remove uploads a crash left behind."""
        await _disk(self._start)

    async def ping(self) -> None:
        """Return if the directory exists and is writable, else raise Unavailable."""
        if not await asyncio.to_thread(os.access, self._root, os.W_OK | os.X_OK):
            raise Unavailable(f"file: blob directory {self._root} is missing or not writable")

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Write the chunks to an upload file, flush it, then rename it to the object."""
        upload = _Upload(self._uploads, self._root, check_key(key))
        await _disk(upload.open)
        try:
            size = 0
            pending = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if not pending and len(chunk) >= CHUNK_BYTES:
                    await _disk(upload.write, chunk)  # large enough already: no copy
                    continue
                pending += chunk
                if len(pending) >= CHUNK_BYTES:
                    await _disk(upload.write, pending)
                    pending = bytearray()
            if pending:
                await _disk(upload.write, pending)
            await _disk(upload.finish)
        except BaseException:
            # The upload's own failure is what the caller must see; a file left over by a
            # failing discard is swept at the next start.
            with contextlib.suppress(Unavailable):
                await _disk(upload.discard)
            raise
        return size

    async def read(self, key: str, *, offset: int = 0, length: int | None = None) -> FileChunks:
        """Open the object (`NotFound` if absent) and stream [offset, offset+length) of it."""
        path = self._root / check_key(key)
        check_range(offset, length)
        fd, size = await _disk(_open_object, path, key)
        end = size if length is None else min(size, offset + length)
        return FileChunks(fd, offset, end)

    async def size(self, key: str) -> int | None:
        """The file's size, or None if there is no object under `key`."""
        path = self._root / check_key(key)
        return await _disk(_size, path)

    async def delete(self, key: str) -> None:
        """Remove the file, any upload of the key, and the folders this leaves empty."""
        path = self._root / check_key(key)
        await _disk(self._delete, path, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix`; how many there were."""
        return await _disk(self._delete_prefix, check_prefix(prefix))

    async def close(self) -> None:
        """Nothing to release: every read holds its own file."""

    def _start(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
        cutoff = time.time() - STALE_SECONDS
        with os.scandir(self._uploads) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)

    def _delete(self, path: Path, key: str) -> None:
        # Only a file is an object: a folder of that name holds other keys.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            os.unlink(path)
        _discard_uploads(self._uploads, key)
        self._prune(path.parent)

    def _delete_prefix(self, prefix: str) -> int:
        folder, _, start = prefix.rpartition("/")
        base = self._root / folder if folder else self._root
        count = 0
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        for entry in entries:
            if not entry.name.startswith(start) or "~" in entry.name:
                continue  # `~uploads` and the like are ours, not objects
            if entry.is_dir(follow_symlinks=False):
                count += _remove_tree(Path(entry.path))
            else:
                is_object = entry.is_file(follow_symlinks=False)
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # deleted meanwhile
                count += is_object
        self._prune(base)
        return count

    def _prune(self, folder: Path) -> None:
        """Remove `folder` and its parents while empty, so deleted namespaces leave no trace."""
        while folder != self._root and self._root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): its parents are not empty either
            folder = folder.parent


class _Upload:
    """One `put` in progress: its file in the uploads folder until it is renamed into place."""

    def __init__(self, uploads: Path, root: Path, key: str) -> None:
        self.key = key
        self.root = root
        self.target = root / key
        # Named by a hash of the key, since keys may be longer than a file name.
        self.path = uploads / f"{_key_hash(key)}~{secrets.token_hex(8)}.partial"
        self.fd = -1

    def open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self.fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:  # `start` was not called: make the uploads folder now
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.fd = os.open(self.path, flags, 0o600)

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def finish(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        # A delete of another key may remove the object's folder once empty, between our making
        # it and renaming into it: make it again then.
        for attempt in range(5):
            made = _make_folders(self.root, self.target.parent, self.key)
            try:
                os.replace(self.path, self.target)
                break
            except IsADirectoryError:
                raise Conflict(
                    f"blob key {self.key!r} is a folder of other keys, so it cannot be an object"
                ) from None
            except FileNotFoundError:
                if not self.path.exists():
                    raise Conflict(f"blob {self.key!r} was deleted while being uploaded") from None
                if attempt == 4:
                    raise
        # The rename, and every folder we made, must reach the disk before we say it is stored.
        for folder in (self.target.parent, *made):
            _fsync_directory(folder)

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class FileChunks:
    """The bytes [position, end) of an open file, read a chunk at a time in a thread."""

    def __init__(self, fd: int, position: int, end: int) -> None:
        self._fd = fd
        self._position = position
        self._end = end
        self._reading = False
        self._close_after_read = False

    def __aiter__(self) -> FileChunks:
        return self

    async def __anext__(self) -> bytes:
        if self._fd < 0 or self._position >= self._end:
            await self.aclose()
            raise StopAsyncIteration
        self._reading = True
        try:
            want = min(CHUNK_BYTES, self._end - self._position)
            # pread reads at an offset, so nothing before `position` is ever read.
            data = await _disk(os.pread, self._fd, want, self._position)
        finally:
            self._reading = False
            if self._close_after_read:
                self._release()
        if not data:  # the file was truncated under us (by hand): stop at what there is
            self._release()
            raise StopAsyncIteration
        self._position += len(data)
        return data

    async def aclose(self) -> None:
        """Close the file now."""
        if self._reading:
            # Closing a descriptor a thread still reads from could hand its number to another
            # file mid-read: the read in flight closes it when done.
            self._close_after_read = True
        else:
            self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        # Dropped half-read: a read in flight holds a reference, so none is running now.
        if getattr(self, "_fd", -1) >= 0:
            self._release()


def _open_object(path: Path, key: str) -> tuple[int, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"blob {key!r} does not exist") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a folder of other keys is not an object
            raise NotFound(f"blob {key!r} does not exist")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _size(path: Path) -> int | None:
    try:
        info = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _make_folders(root: Path, folder: Path, key: str) -> list[Path]:
    """Make `folder` and its missing parents under root; the folders whose entries changed."""
    changed: list[Path] = []
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        try:
            current.mkdir(mode=0o700)
        except FileExistsError:
            if not current.is_dir():
                raise Conflict(
                    f"blob key {key!r}: {current.relative_to(root)} is an object, not a folder"
                ) from None
        else:
            changed.append(current.parent)
    return changed


def _discard_uploads(uploads: Path, key: str) -> None:
    start = f"{_key_hash(key)}~"
    try:
        entries = list(os.scandir(uploads))  # small: only uploads in progress
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(start):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _remove_tree(folder: Path) -> int:
    """Remove `folder` and everything in it; how many files there were."""
    count = 0
    for parent, folders, files in os.walk(folder, topdown=False):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(parent, name))
                count += 1
        for name in folders:
            with contextlib.suppress(FileNotFoundError):
                path = os.path.join(parent, name)
                # os.walk lists a symlink to a folder among folders; never follow it.
                (os.unlink if os.path.islink(path) else os.rmdir)(path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(folder)
    return count


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _fsync_directory(directory: Path) -> None:
    # Without this a rename or new entry can vanish after a power cut, though the data was synced.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _disk(func: Callable[..., T], /, *args: object) -> T:
    """`func(*args)` in a thread; OSError becomes Unavailable.

    If the caller is cancelled meanwhile, the thread still runs to the end before the
    cancellation goes on: it may be using a file descriptor the caller closes as it unwinds.
    """
    job = asyncio.ensure_future(asyncio.to_thread(func, *args))
    interrupted: asyncio.CancelledError | None = None
    while not job.done():
        try:
            await asyncio.wait({job})
        except asyncio.CancelledError as exc:
            interrupted = exc
    if interrupted is not None:
        if not job.cancelled():
            job.exception()  # retrieved, so asyncio does not report it as never retrieved
        raise interrupted
    try:
        return job.result()
    except OSError as exc:
        raise Unavailable(f"file: {exc}") from exc


def create(url: str, *, data_dir: Path, **_: object) -> FileBlobStore:
    """A FileBlobStore from `file://` (data_dir/blobs) or `file:///absolute/path`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ConfigurationError(f"blob store URL must start with file://, got {parts.scheme!r}")
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigurationError(
            "OBP_BLOB_URL: a file blob store is `file://` (blobs in the data directory) "
            "or `file:///absolute/path/to/folder`, without host or options"
        )
    path = unquote(parts.path)
    if not path or path == "/":
        return FileBlobStore(data_dir / DEFAULT_FOLDER)
    return FileBlobStore(Path(path))

"""S3 plumbing the blob store shares: streamed GetObject bodies and error translation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from obp.adapters.blobs_keys import CHUNK_BYTES
from obp.kernel.errors import Conflict, Unavailable

if TYPE_CHECKING:
    from aiobotocore.response import StreamingBody

# Errors that mean the backend cannot serve us, as opposed to an answer we expect (404, 416).
UNREACHABLE = (BotoCoreError, aiohttp.ClientError, OSError)


class S3Chunks:
    """The body of one GetObject, a chunk at a time; closing it releases the connection."""

    def __init__(
        self, body: StreamingBody | None, *, on_release: Callable[[], None] | None = None
    ) -> None:
        self._body = body
        self._on_release = on_release

    def __aiter__(self) -> S3Chunks:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        if body is None:
            raise StopAsyncIteration
        try:
            with translated():
                data = await body.read(CHUNK_BYTES)
        except BaseException:
            self._release()
            raise
        if not data:
            self._release()
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        """Close the HTTP response now."""
        self._release()

    def _release(self) -> None:
        body, self._body = self._body, None
        done, self._on_release = self._on_release, None
        try:
            if body is not None:
                body.close()
        finally:
            if done is not None:
                done()

    def __del__(self) -> None:
        # Dropped half-read: close the response so its connection is not held for ever. After
        # the event loop closed there is nothing left to release, and closing would fail.
        with contextlib.suppress(Exception):
            self._release()


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Backend failures become Unavailable at the adapter's edge."""
    try:
        yield
    except ClientError as exc:
        if code_of(exc) == "NoSuchUpload":  # only a put sends parts: a delete aborted its upload
            raise Conflict("s3: the blob was deleted while being uploaded") from exc
        raise _unavailable(exc) from exc
    except UNREACHABLE as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> Unavailable:
    return Unavailable(f"s3: {describe(exc)}")


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = error.get("Message") or ""
        return f"{error.get('Code', 'error')} (HTTP {status_of(exc)}) {message}".rstrip()
    return str(exc) or type(exc).__name__


def status_of(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

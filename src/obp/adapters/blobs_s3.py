"""S3 blob store on aiobotocore: AWS or any S3 API (MinIO, Ceph, Garage, moto in tests).

`s3://BUCKET?endpoint=http://host:port&region=us-east-1`, with the options below. Credentials
come from `access_key` and `secret_key` or, without them, from the standard AWS chain
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, profiles, instance roles). Objects up to one part
(8 MiB) are one PutObject; larger ones a multipart upload of 8 MiB parts, aborted on failure.
Give the bucket a lifecycle rule aborting incomplete multipart uploads after a day: a process
killed mid-upload cannot abort its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from obp.adapters.blobs_keys import check_key, check_prefix, check_range
from obp.adapters.s3_io import (
    UNREACHABLE,
    S3Chunks,
    code_of,
    describe,
    status_of,
    translated,
)
from obp.kernel.errors import ConfigurationError, NotFound, PayloadTooLarge, Unavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit: objects up to 78 GiB at 8 MiB a part
# Keys listed (and deleted) per request; S3 returns at most 1000.
LIST_PAGE_SIZE = 1000
MAX_CONNECTIONS = 50  # each open read holds one
# Open reads may hold at most this many: a slow client holds its connection as long as it
# reads, and uploads, deletes and /readyz must still find one free.
MAX_READERS = 40
# How long a read waits for a free reader slot before the request answers 503.
READER_WAIT_SECONDS = 10.0
_OPTIONS = ("endpoint", "region", "access_key", "secret_key", "create_bucket", "addressing_style")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3BlobStore:
    """A BlobStore on one S3 bucket; keys are used as given (callers prefix the namespace)."""

    def __init__(
        self,
        bucket: str,
        *,
        client_options: dict[str, Any],
        create_bucket: bool = False,
        max_readers: int = MAX_READERS,
        reader_wait: float = READER_WAIT_SECONDS,
    ) -> None:
        self._bucket = bucket
        self._client_options = client_options
        self._create_bucket = create_bucket
        self._client: S3Client | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        # Aborts of failed uploads that must finish even if the caller is cancelled again.
        self._aborts: set[asyncio.Task[None]] = set()
        self._readers = asyncio.Semaphore(max_readers)
        self._max_readers = max_readers
        self._reader_wait = reader_wait

    def __repr__(self) -> str:
        # Never the credentials.
        endpoint = self._client_options.get("endpoint_url") or "aws"
        return f"S3BlobStore(bucket={self._bucket!r}, endpoint={endpoint!r})"

    @property
    def backend(self) -> str:
        """Always `s3`."""
        return "s3"

    async def start(self) -> None:
        """Open the client, one connection pool for the store's life; create the bucket if asked."""
        if self._client is not None:
            return
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client("s3", **self._client_options)
        )
        try:
            if self._create_bucket:
                await self._ensure_bucket(client)
        except BaseException:
            await stack.aclose()
            raise
        self._client, self._exit = client, stack

    async def ping(self) -> None:
        """HeadBucket: return if the bucket answers, else raise Unavailable saying why."""
        client = self._require_client()
        with translated():
            try:
                await client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                why = {
                    404: "does not exist: create it (or add ?create_bucket=true to OBP_BLOB_URL)",
                    403: "refuses access: check the credentials",
                }.get(status_of(exc) or 0)
                if why is None:
                    raise
                raise Unavailable(f"s3: bucket {self._bucket!r} {why}") from exc

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """PutObject up to one part; beyond, a multipart upload, aborted if anything fails."""
        client = self._require_client()
        check_key(key)
        size = 0
        # A BytesIO, not bytes: it is sent without a copy and without aiohttp writing it all
        # in one go on the event loop.
        part = io.BytesIO()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    if part.tell() == PART_BYTES:
                        # Full, and more follows: it is a part (exactly one part's worth of
                        # data stays one PutObject).
                        if upload_id is None:
                            with translated():
                                begun = await client.create_multipart_upload(
                                    Bucket=self._bucket, Key=key
                                )
                            upload_id = begun["UploadId"]
                        parts.append(await self._send_part(client, key, upload_id, parts, part))
                        part = io.BytesIO()
                    room = PART_BYTES - part.tell()
                    part.write(view[:room])
                    view = view[room:]
            part.seek(0)
            with translated():
                if upload_id is None:
                    await client.put_object(Bucket=self._bucket, Key=key, Body=part)
                else:
                    parts.append(await self._send_part(client, key, upload_id, parts, part))
                    await client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            if upload_id is not None:
                await self._abort(client, key, upload_id)
            raise
        return size

    async def read(self, key: str, *, offset: int = 0, length: int | None = None) -> S3Chunks:
        """GetObject with a Range header, so S3 never sends what precedes `offset`."""
        client = self._require_client()
        check_key(key)
        check_range(offset, length)
        if length == 0:
            # No Range header asks for nothing: only say whether the object exists.
            if await self.size(key) is None:
                raise NotFound(f"blob {key!r} does not exist")
            return S3Chunks(None)
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{last}"
        try:
            async with asyncio.timeout(self._reader_wait):
                await self._readers.acquire()
        except TimeoutError:
            raise Unavailable(
                f"s3: all {self._max_readers} download connections are busy; retry shortly"
            ) from None
        try:
            with translated():
                try:
                    response = await client.get_object(**request)
                except ClientError as exc:
                    if status_of(exc) == 404 and code_of(exc) != "NoSuchBucket":
                        raise NotFound(f"blob {key!r} does not exist") from None
                    if status_of(exc) == 416:
                        self._readers.release()
                        return S3Chunks(None)  # the object exists but ends before `offset`
                    raise
        except BaseException:
            self._readers.release()
            raise
        return S3Chunks(response["Body"], on_release=self._readers.release)

    async def size(self, key: str) -> int | None:
        """HeadObject's ContentLength, or None if there is no object under `key`."""
        client = self._require_client()
        check_key(key)
        with translated():
            try:
                response = await client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if status_of(exc) == 404:
                    return None
                raise
        return response["ContentLength"]

    async def delete(self, key: str) -> None:
        """DeleteObject, then abort the unfinished multipart uploads of exactly this key."""
        client = self._require_client()
        check_key(key)
        with translated():
            await client.delete_object(Bucket=self._bucket, Key=key)
            await self._abort_uploads(client, key, exact=True)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete the listed objects a page at a time, then unfinished uploads under `prefix`."""
        client = self._require_client()
        check_prefix(prefix)
        count = 0
        with translated():
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": LIST_PAGE_SIZE},
            )
            async for page in pages:
                doomed: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if not doomed:
                    continue
                answer = await client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": doomed, "Quiet": True},
                )
                for error in answer.get("Errors", []):
                    raise Unavailable(
                        f"s3: deleting {error.get('Key')!r} failed: {error.get('Code')} "
                        f"{error.get('Message', '')}".rstrip()
                    )
                count += len(doomed)
            await self._abort_uploads(client, prefix, exact=False)
        return count

    async def close(self) -> None:
        """Let pending aborts finish, then close the client and its connections."""
        if self._aborts:
            await asyncio.gather(*self._aborts, return_exceptions=True)
        stack, self._exit, self._client = self._exit, None, None
        if stack is not None:
            await stack.aclose()

    def _require_client(self) -> S3Client:
        if self._client is None:
            raise Unavailable("s3: blob store not started")
        return self._client

    async def _ensure_bucket(self, client: S3Client) -> None:
        region = self._client_options["region_name"]
        request: dict[str, Any] = {"Bucket": self._bucket}
        if region != "us-east-1":  # the one region S3 refuses to be told about
            request["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with translated():
            try:
                await client.create_bucket(**request)
            except ClientError as exc:
                # Ours already (AWS says owned; others say exists): another owner shows at ping.
                if code_of(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def _send_part(
        self,
        client: S3Client,
        key: str,
        upload_id: str,
        parts: list[CompletedPartTypeDef],
        body: io.BytesIO,
    ) -> CompletedPartTypeDef:
        number = len(parts) + 1
        body.seek(0)
        if number > MAX_PARTS:
            raise PayloadTooLarge(
                f"s3: blob {key!r} is larger than {MAX_PARTS} parts of {PART_BYTES} bytes"
            )
        with translated():
            answer = await client.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def _abort(self, client: S3Client, key: str, upload_id: str) -> None:
        """Abort an upload; shielded, so a second cancellation does not leave it half-done."""
        task = asyncio.create_task(self._abort_quietly(client, key, upload_id))
        self._aborts.add(task)
        task.add_done_callback(self._aborts.discard)
        await asyncio.shield(task)

    async def _abort_quietly(self, client: S3Client, key: str, upload_id: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if code_of(exc) != "NoSuchUpload":  # already aborted (a delete of the key) is fine
                log.warning("s3: aborting the upload of %r failed: %s", key, describe(exc))
        except UNREACHABLE as exc:
            # The upload's own failure is what the caller needs to see; this one is logged.
            log.warning("s3: aborting the upload of %r failed: %s", key, describe(exc))

    async def _abort_uploads(self, client: S3Client, prefix: str, *, exact: bool) -> None:
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        async for page in pages:
            for upload in page.get("Uploads", []):
                key, upload_id = upload.get("Key", ""), upload.get("UploadId", "")
                if not key or not upload_id or (exact and key != prefix):
                    continue
                try:
                    await client.abort_multipart_upload(
                        Bucket=self._bucket, Key=key, UploadId=upload_id
                    )
                except ClientError as exc:
                    if code_of(exc) != "NoSuchUpload":  # finished or aborted meanwhile: fine
                        raise


def create(
    url: str,
    *,
    max_readers: int = MAX_READERS,
    reader_wait: float = READER_WAIT_SECONDS,
    **_: object,
) -> S3BlobStore:
    """An S3BlobStore from `s3://bucket?endpoint=&region=&access_key=&secret_key=&...`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise ConfigurationError(f"blob store URL must start with s3://, got {parts.scheme!r}")
    bucket = parts.hostname or ""
    if not _BUCKET.fullmatch(bucket) or parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError(
            "OBP_BLOB_URL: an S3 blob store is s3://BUCKET?endpoint=https://host:port&region=…, "
            "where BUCKET is a valid bucket name (3-63 of a-z 0-9 . -), without a path"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"OBP_BLOB_URL: S3 option {unknown[0]!r} is not accepted; "
            f"accepted: {', '.join(_OPTIONS)}"
        )
    endpoint = options.get("endpoint") or None
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigurationError("OBP_BLOB_URL: endpoint must be an http:// or https:// URL")
    access_key, secret_key = options.get("access_key"), options.get("secret_key")
    if (access_key is None) != (secret_key is None):
        raise ConfigurationError(
            "OBP_BLOB_URL: give both access_key and secret_key, or neither (then the AWS "
            "variables and profiles are used)"
        )
    environ = os.environ
    region = options.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    region = region or "us-east-1"
    # S3-compatible servers on their own endpoint rarely have a DNS name per bucket.
    style = options.get("addressing_style") or ("path" if endpoint else "auto")
    if style not in ("path", "virtual", "auto"):
        raise ConfigurationError("OBP_BLOB_URL: addressing_style is path, virtual or auto")
    create_bucket = options.get("create_bucket", "false").lower()
    if create_bucket not in ("true", "false"):
        raise ConfigurationError("OBP_BLOB_URL: create_bucket is true or false")
    client_options: dict[str, Any] = {
        "region_name": region,
        "endpoint_url": endpoint,
        "aws_access_key_id": access_key or None,
        "aws_secret_access_key": secret_key or None,
        "config": AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": style},
            # Fail fast enough for /readyz and requests, retry what S3 asks to be retried.
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=MAX_CONNECTIONS,
            # Checksums only where S3 requires them: the newer default (CRC on every upload)
            # is refused by many S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }
    return S3BlobStore(
        bucket,
        client_options=client_options,
        create_bucket=create_bucket == "true",
        max_readers=max_readers,
        reader_wait=reader_wait,
    )

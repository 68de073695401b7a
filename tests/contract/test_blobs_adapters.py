"""What only one blob adapter does: the file store's folders and sweep, S3's settings."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from obp.adapters import blobs_fs, blobs_s3
from obp.kernel.errors import ConfigurationError, Conflict, Unavailable
from tests.s3 import S3Bucket


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_file_store_refuses_an_object_inside_another(tmp_path: Path) -> None:
    store = blobs_fs.create(f"file://{tmp_path}", data_dir=tmp_path)
    await store.put("acme/a", chunked(b"x"))

    with pytest.raises(Conflict):
        await store.put("acme/a/b", chunked(b"y"))
    with pytest.raises(Conflict):
        await store.put("acme", chunked(b"y"))
    assert [chunk async for chunk in await store.read("acme/a")] == [b"x"]


async def test_file_store_start_sweeps_uploads_a_crash_left(tmp_path: Path) -> None:
    store = blobs_fs.create("file://", data_dir=tmp_path)
    uploads = tmp_path / "blobs" / blobs_fs.UPLOADS
    uploads.mkdir(parents=True)
    stale, fresh = uploads / "aa~1.partial", uploads / "bb~2.partial"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"another process is writing this")
    old = time.time() - blobs_fs.STALE_SECONDS - 5
    os.utime(stale, (old, old))

    await store.start()

    assert not stale.exists()
    assert fresh.exists()
    assert store.root == tmp_path / "blobs"


async def test_file_store_deletes_leave_no_empty_folders(tmp_path: Path) -> None:
    store = blobs_fs.create(f"file://{tmp_path / 'b'}", data_dir=tmp_path)
    await store.start()
    await store.put("ns/files/2024/a", chunked(b"x"))
    await store.put("other/b", chunked(b"x"))

    await store.delete("ns/files/2024/a")
    await store.delete_prefix("other/")

    assert sorted(path.name for path in (tmp_path / "b").iterdir()) == [blobs_fs.UPLOADS]


async def test_s3_unreachable_endpoint_raises_unavailable() -> None:
    # Port 1 (tcpmux) has no listener on any sane host: connection refused, immediately.
    store = blobs_s3.create(
        "s3://obp-test-nowhere?endpoint=http://127.0.0.1:1&access_key=a&secret_key=b"
    )
    await store.start()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"^s3: "):
            await store.ping()
        with pytest.raises(Unavailable, match=r"^s3: "):
            await store.put("acme/a", chunked(b"x"))
        with pytest.raises(Unavailable, match=r"^s3: "):
            await store.read("acme/a")
        assert time.monotonic() - started < 30
    finally:
        await store.close()


@pytest.mark.s3
async def test_s3_ping_names_a_missing_bucket(s3_bucket: S3Bucket) -> None:
    store = blobs_s3.create(s3_bucket.url.replace("create_bucket=true", "create_bucket=false"))
    await store.start()
    try:
        with pytest.raises(Unavailable, match="does not exist"):
            await store.ping()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://Bad_Bucket?secret_key=hunter2&access_key=a", "bucket name"),
        ("s3://bucket/some/path?secret_key=hunter2&access_key=a", "without a path"),
        ("s3://bucket?secret_key=hunter2&access_key=a&colour=blue", "'colour' is not accepted"),
        ("s3://bucket?secret_key=hunter2", "both access_key and secret_key"),
        ("s3://bucket?secret_key=hunter2&access_key=a&endpoint=ftp://x", "http:// or https://"),
        ("s3://bucket?secret_key=hunter2&access_key=a&create_bucket=maybe", "true or false"),
    ],
)
def test_s3_url_errors_say_what_is_accepted_without_the_secret(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        blobs_s3.create(url)
    assert "hunter2" not in str(raised.value)


def test_s3_store_never_shows_its_secret() -> None:
    store = blobs_s3.create("s3://bucket?access_key=AKIA&secret_key=hunter2-secret")

    assert "hunter2" not in repr(store)


@pytest.mark.s3
async def test_s3_slow_readers_cannot_take_every_connection(s3_bucket: S3Bucket) -> None:
    store = blobs_s3.create(s3_bucket.url, max_readers=2, reader_wait=0.2)
    await store.start()
    try:
        await store.put("ns/slow", chunked(b"x" * 1000))
        held = [await store.read("ns/slow"), await store.read("ns/slow")]
        with pytest.raises(Unavailable, match="download connections are busy"):
            await store.read("ns/slow")
        # Writes and probes still get a connection while every reader slot is taken.
        await store.put("ns/other", chunked(b"y"))
        await store.ping()
        await held[0].aclose()
        freed = await store.read("ns/slow")
        assert b"".join([chunk async for chunk in freed]) == b"x" * 1000
        await held[1].aclose()
    finally:
        await store.close()

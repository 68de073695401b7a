"""The BlobStore contract, run against the file store and an S3 server (moto in CI)."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from obp.adapters import blobs_fs, blobs_s3
from obp.adapters.blobs_keys import CHUNK_BYTES
from obp.adapters.blobs_s3 import PART_BYTES
from obp.kernel.errors import Conflict, InvalidInput, NotFound, Unavailable
from obp.kernel.ports import BlobStore
from tests.s3 import S3Bucket, fresh_bucket

MIB = 1024 * 1024


class Backing:
    """One blob store under test and a look at what it really holds, behind its back."""

    def __init__(self, store: BlobStore, *, root: Path | None, bucket: S3Bucket | None) -> None:
        self.store = store
        self.root = root
        self.bucket = bucket

    async def listing(self) -> list[str]:
        """Every file under the store's directory, or every object and unfinished upload."""
        if self.bucket is not None:
            return await self.bucket.listing()
        assert self.root is not None
        return sorted(
            str(path.relative_to(self.root)) for path in self.root.rglob("*") if path.is_file()
        )


@pytest_asyncio.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
async def backing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backing]:
    if request.param == "file":
        root = tmp_path / "blobs"
        store = blobs_fs.create(f"file://{root}", data_dir=tmp_path)
        async with started(store) as blobs:
            yield Backing(blobs, root=root, bucket=None)
    else:
        async with fresh_bucket() as bucket, started(blobs_s3.create(bucket.url)) as blobs:
            yield Backing(blobs, root=None, bucket=bucket)


@asynccontextmanager
async def started(store: BlobStore) -> AsyncIterator[BlobStore]:
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def blobs(backing: Backing) -> BlobStore:
    return backing.store


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(
    blobs: BlobStore, key: str, *, offset: int = 0, length: int | None = None
) -> bytes:
    stream = await blobs.read(key, offset=offset, length=length)
    return b"".join([chunk async for chunk in stream])


class Stall:
    """Chunks that stop after `size` bytes until released (then end) or failed (then raise)."""

    def __init__(self, size: int) -> None:
        self.data = payload(size)
        self.stalled = asyncio.Event()
        self.go_on = asyncio.Event()
        self.fail = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in chunked(self.data, MIB):
            yield chunk
        # Asked for more: the store has taken everything above (S3: sent the full parts).
        self.stalled.set()
        await self.go_on.wait()
        if self.fail:
            raise RuntimeError("the client went away")


async def test_ping_succeeds_on_a_reachable_backend(blobs: BlobStore) -> None:
    await blobs.ping()
    assert blobs.backend in ("file", "s3")


async def test_reads_back_exactly_what_was_put(blobs: BlobStore) -> None:
    data = payload(300_000) + bytes(range(256))

    written = await blobs.put("acme/files/a.bin", chunked(data, 10_000))

    assert written == len(data)
    assert await read_all(blobs, "acme/files/a.bin") == data
    assert await blobs.size("acme/files/a.bin") == len(data)


async def test_stores_an_empty_object(blobs: BlobStore) -> None:
    assert await blobs.put("acme/empty", chunked(b"")) == 0

    assert await read_all(blobs, "acme/empty") == b""
    assert await blobs.size("acme/empty") == 0


async def test_takes_bytes_bytearray_and_memoryview_chunks(blobs: BlobStore) -> None:
    async def mixed() -> AsyncIterator[bytes]:
        yield b"abc"
        yield bytearray(b"def")  # type: ignore[misc]  # what a caller may hand over
        yield memoryview(b"ghi")  # type: ignore[misc]

    assert await blobs.put("acme/mixed", mixed()) == 9
    assert await read_all(blobs, "acme/mixed") == b"abcdefghi"


async def test_put_replaces_an_existing_object(blobs: BlobStore) -> None:
    await blobs.put("acme/a", chunked(b"first version, longer"))
    await blobs.put("acme/a", chunked(b"second"))

    assert await read_all(blobs, "acme/a") == b"second"


async def test_reads_a_range_from_the_middle(blobs: BlobStore) -> None:
    data = payload(3 * MIB)
    await blobs.put("acme/big", chunked(data))

    assert (
        await read_all(blobs, "acme/big", offset=1_000_001, length=1234)
        == data[1_000_001 : 1_000_001 + 1234]
    )
    assert await read_all(blobs, "acme/big", offset=MIB + 5) == data[MIB + 5 :]
    assert await read_all(blobs, "acme/big", length=10) == data[:10]


async def test_range_past_the_end_returns_what_exists(blobs: BlobStore) -> None:
    await blobs.put("acme/short", chunked(b"0123456789"))

    assert await read_all(blobs, "acme/short", offset=7, length=100) == b"789"
    assert await read_all(blobs, "acme/short", offset=10) == b""
    assert await read_all(blobs, "acme/short", offset=50, length=5) == b""
    assert await read_all(blobs, "acme/short", offset=3, length=0) == b""


async def test_read_of_a_missing_key_raises_not_found(blobs: BlobStore) -> None:
    for offset, length in ((0, None), (5, 5), (0, 0)):
        with pytest.raises(NotFound):
            await blobs.read("acme/missing", offset=offset, length=length)
    assert await blobs.size("acme/missing") is None


async def test_reads_in_chunks_of_at_most_one_mebibyte(blobs: BlobStore) -> None:
    data = payload(3 * MIB + 17)
    await blobs.put("acme/chunks", chunked(data, 3 * MIB))

    chunks = [chunk async for chunk in await blobs.read("acme/chunks")]

    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= CHUNK_BYTES


@pytest.mark.parametrize("size", [PART_BYTES - 1, PART_BYTES, PART_BYTES + 1])
async def test_sizes_around_one_part_round_trip(blobs: BlobStore, size: int) -> None:
    data = payload(size)

    assert await blobs.put("acme/edge", chunked(data, MIB)) == size
    assert await read_all(blobs, "acme/edge") == data


async def test_multipart_sized_upload_round_trips(backing: Backing) -> None:
    blobs = backing.store
    data = payload(20 * MIB + 3)

    assert await blobs.put("acme/huge", chunked(data, 3 * MIB + 1)) == len(data)

    assert await blobs.size("acme/huge") == len(data)
    assert await read_all(blobs, "acme/huge") == data
    across = PART_BYTES - 10  # a range over the boundary of the first two parts
    assert await read_all(blobs, "acme/huge", offset=across, length=20) == data[across:][:20]
    assert await backing.listing() == ["acme/huge"]


async def test_failed_upload_leaves_no_object_and_no_partial(backing: Backing) -> None:
    stall = Stall(PART_BYTES + 2 * MIB)  # more than a part: S3 has begun a multipart upload
    stall.fail = True
    stall.go_on.set()

    with pytest.raises(RuntimeError, match="went away"):
        await backing.store.put("acme/failed", stall)

    assert await backing.listing() == []
    with pytest.raises(NotFound):
        await backing.store.read("acme/failed")


async def test_failed_upload_keeps_the_previous_object(backing: Backing) -> None:
    await backing.store.put("acme/kept", chunked(b"old"))
    stall = Stall(2 * MIB)
    stall.fail = True
    stall.go_on.set()

    with pytest.raises(RuntimeError):
        await backing.store.put("acme/kept", stall)

    assert await read_all(backing.store, "acme/kept") == b"old"
    assert await backing.listing() == ["acme/kept"]


async def test_cancelled_upload_leaves_nothing(backing: Backing) -> None:
    stall = Stall(PART_BYTES + MIB)
    upload = asyncio.create_task(backing.store.put("acme/cancelled", stall))
    await asyncio.wait_for(stall.stalled.wait(), 30)
    if backing.bucket is not None:
        assert await backing.listing() == ["upload:acme/cancelled"]  # really begun

    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert await backing.listing() == []


async def test_concurrent_puts_of_one_key_leave_one_of_them_whole(blobs: BlobStore) -> None:
    versions = [payload(2 * MIB, seed) for seed in range(4)]

    await asyncio.gather(*(blobs.put("acme/race", chunked(data)) for data in versions))

    assert await read_all(blobs, "acme/race") in versions


async def test_memory_stays_bounded_whatever_the_size(blobs: BlobStore) -> None:
    block = payload(64 * 1024)

    async def forty_mebibytes() -> AsyncIterator[bytes]:
        for _ in range(40 * 16):
            yield block

    tracemalloc.start()
    try:
        await blobs.put("acme/forty", forty_mebibytes())
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        read = sum([len(chunk) async for chunk in await blobs.read("acme/forty")])
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert read == 40 * MIB
    assert put_peak < 2 * PART_BYTES, f"put held {put_peak / MIB:.1f} MiB"
    assert read_peak < 4 * CHUNK_BYTES, f"read held {read_peak / MIB:.1f} MiB"


async def test_delete_is_idempotent(backing: Backing) -> None:
    blobs = backing.store
    await blobs.put("acme/doomed", chunked(b"x"))

    await blobs.delete("acme/doomed")
    await blobs.delete("acme/doomed")
    await blobs.delete("acme/never/existed")

    assert await blobs.size("acme/doomed") is None
    assert await backing.listing() == []


async def test_delete_aborts_an_upload_in_progress_of_that_key(backing: Backing) -> None:
    stall = Stall(PART_BYTES + MIB)
    upload = asyncio.create_task(backing.store.put("acme/inflight", stall))
    await asyncio.wait_for(stall.stalled.wait(), 30)

    await backing.store.delete("acme/inflight")
    assert await backing.listing() == []
    stall.go_on.set()

    # S3 answers the next part with NoSuchUpload (Conflict); moto answers 500 (Unavailable).
    with pytest.raises(Conflict if backing.bucket is None else (Conflict, Unavailable)):
        await upload
    assert await backing.listing() == []


async def test_delete_prefix_removes_only_that_prefix(backing: Backing) -> None:
    blobs = backing.store
    for key in ("ns-a/x", "ns-a/sub/y", "ns-a/sub/deep/z", "ns-ab/x", "ns-b/x", "top"):
        await blobs.put(key, chunked(key.encode()))

    assert await blobs.delete_prefix("ns-a/") == 3
    assert await backing.listing() == ["ns-ab/x", "ns-b/x", "top"]
    assert await blobs.delete_prefix("ns-a/") == 0

    # A prefix is a string prefix of the key, not a folder.
    assert await blobs.delete_prefix("ns-") == 2
    assert await backing.listing() == ["top"]
    assert await read_all(blobs, "top") == b"top"


async def test_delete_prefix_goes_through_every_page(
    backing: Backing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs_s3, "LIST_PAGE_SIZE", 2)
    for number in range(7):
        await backing.store.put(f"acme/many/{number}", chunked(b"."))

    assert await backing.store.delete_prefix("acme/") == 7
    assert await backing.listing() == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "trailing/",
        "a//b",
        "a/./b",
        "a/../b",
        "..",
        "a b",
        "a\\b",
        "caf\u00e9",
        "a\nb",
        "tilde~x",
        "x" * 256,
        "/".join(["x" * 255] * 5),
    ],
)
async def test_rejects_keys_with_dot_segments_or_bad_characters(blobs: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await blobs.put(key, chunked(b"x"))
    with pytest.raises(InvalidInput):
        await blobs.read(key)
    with pytest.raises(InvalidInput):
        await blobs.size(key)
    with pytest.raises(InvalidInput):
        await blobs.delete(key)


@pytest.mark.parametrize("prefix", ["", "/", "a/../", "../", "a b/", "a//"])
async def test_rejects_empty_or_malformed_prefixes(blobs: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        await blobs.delete_prefix(prefix)


async def test_accepts_keys_up_to_the_length_limit(blobs: BlobStore) -> None:
    key = "/".join(["k" * 255] * 4)  # 1023 bytes, segments as long as a file name may be

    await blobs.put(key, chunked(b"long"))

    assert await read_all(blobs, key) == b"long"
    assert await blobs.delete_prefix("k" * 255 + "/") == 1


async def test_rejects_negative_offsets_and_lengths(blobs: BlobStore) -> None:
    await blobs.put("acme/a", chunked(b"abc"))
    with pytest.raises(InvalidInput):
        await blobs.read("acme/a", offset=-1)
    with pytest.raises(InvalidInput):
        await blobs.read("acme/a", length=-1)


async def test_abandoned_reads_release_their_streams(backing: Backing) -> None:
    blobs = backing.store
    await blobs.put("acme/stream", chunked(payload(3 * MIB)))
    descriptors = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    # More than the S3 connection pool holds: a stream not released would starve the pool.
    for round_ in range(blobs_s3.MAX_CONNECTIONS + 10):
        stream = await blobs.read("acme/stream", offset=round_)
        assert len(await anext(stream)) > 0
        if round_ % 2:
            await stream.aclose()
        del stream  # the others are dropped half-read
    gc.collect()

    assert await asyncio.wait_for(read_all(blobs, "acme/stream", length=5), 30) != b""
    if descriptors is not None and backing.root is not None:
        assert len(os.listdir("/proc/self/fd")) <= descriptors


async def test_a_key_that_is_a_folder_of_other_keys_is_not_an_object(backing: Backing) -> None:
    await backing.store.put("acme/folder/inner", chunked(b"x"))

    assert await backing.store.size("acme/folder") is None
    with pytest.raises(NotFound):
        await backing.store.read("acme/folder")
    await backing.store.delete("acme/folder")
    assert await backing.listing() == ["acme/folder/inner"]

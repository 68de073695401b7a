"""The files service on every database engine, over the filesystem blob store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from obp.adapters.blobs_fs import FileBlobStore
from obp.adapters.db import Database
from obp.kernel.clock import utcnow
from obp.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
)
from obp.kernel.events import Event
from obp.services.files import FileService
from obp.services.files.model import blob_key
from obp.services.files.repository import FileRepository
from obp.services.files.upload import UploadFields
from obp.services.namespaces import NamespaceService
from tests.principals import OPERATOR, AllowAll

MiB = 1024 * 1024


@dataclass
class World:
    files: FileService
    namespaces: NamespaceService
    blobs: FileBlobStore
    root: Path
    database: Database


@pytest_asyncio.fixture
async def world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    """A files service with namespace `acme`, blobs under tmp_path/blobs."""
    access = AllowAll()
    namespaces = NamespaceService(unit_of_work=database.unit_of_work, access=access)
    await namespaces.create(principal=OPERATOR, name="acme")
    blobs = FileBlobStore(tmp_path / "blobs")
    await blobs.start()
    files = FileService(
        unit_of_work=database.unit_of_work,
        blobs=blobs,
        namespaces=namespaces,
        access=access,
        max_file_bytes=8 * MiB,
    )
    try:
        yield World(files, namespaces, blobs, tmp_path / "blobs", database)
    finally:
        await blobs.close()


async def _stream(*chunks: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if fail_after is not None and index == fail_after:
            raise ConnectionResetError("client went away")
        yield chunk


def _fields(
    name: str | None = "a.txt", *, content_type: str | None = None, metadata: str | None = None
) -> UploadFields:
    return UploadFields(name=name, content_type=content_type, metadata=metadata)


async def _rows(world: World) -> int:
    async with world.database.unit_of_work(write=False) as uow:
        return (
            len(await FileRepository(uow.connection).lapsed(now=None, limit=1000))
            + (
                await FileRepository(uow.connection).usage(
                    "acme", since=utcnow().replace(year=2000)
                )
            ).count
        )


def _blob_files(world: World) -> list[Path]:
    return [p for p in world.root.rglob("*") if p.is_file()]


async def _read(world: World, file_id: str, offset: int = 0, length: int | None = None) -> bytes:
    record = await world.files.stat(principal=OPERATOR, namespace="acme", file_id=file_id)
    stream = await world.files.read(record=record, offset=offset, length=length)
    return b"".join([chunk async for chunk in stream])


async def test_upload_stores_bytes_with_their_sha256_and_size(world: World) -> None:
    data = [b"x" * MiB, b"y" * 10, b"z" * 3]
    record = await world.files.upload(
        principal=OPERATOR,
        namespace="acme",
        fields=_fields("docs/r.bin", content_type="application/x-r", metadata='{"k": [1]}'),
        chunks=_stream(*data),
    )
    whole = b"".join(data)
    assert (record.size, record.sha256) == (len(whole), hashlib.sha256(whole).hexdigest())
    assert (record.name, record.content_type, record.metadata) == (
        "docs/r.bin",
        "application/x-r",
        {"k": [1]},
    )
    assert await _read(world, record.id) == whole
    assert await _read(world, record.id, offset=MiB + 5, length=6) == b"yyyyyz"


async def test_a_failed_upload_leaves_no_row_and_no_blob(world: World) -> None:
    with pytest.raises(ConnectionResetError):
        await world.files.upload(
            principal=OPERATOR,
            namespace="acme",
            fields=_fields(),
            chunks=_stream(b"a" * MiB, b"b" * MiB, b"c", fail_after=2),
        )
    assert await _rows(world) == 0
    assert _blob_files(world) == []


async def test_a_cancelled_upload_leaves_no_row_and_no_blob(world: World) -> None:
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"a" * MiB
        started.set()
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(
        world.files.upload(principal=OPERATOR, namespace="acme", fields=_fields(), chunks=stalled())
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _rows(world) == 0
    assert _blob_files(world) == []


async def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(world: World) -> None:
    with pytest.raises(PayloadTooLarge, match=str(8 * MiB)):
        await world.files.upload(
            principal=OPERATOR,
            namespace="acme",
            fields=_fields(),
            chunks=_stream(*([b"q" * MiB] * 9)),
        )
    assert await _rows(world) == 0
    assert _blob_files(world) == []


async def test_a_bad_name_known_up_front_is_refused_before_reading(world: World) -> None:
    read = []

    async def watched() -> AsyncIterator[bytes]:
        read.append(1)
        yield b"x"

    fields = UploadFields(name="", locations={"name": ("header", "X-OBP-File-Name")})
    with pytest.raises(InvalidInput) as raised:
        await world.files.upload(
            principal=OPERATOR, namespace="acme", fields=fields, chunks=watched()
        )
    assert raised.value.errors[0].loc == ("header", "X-OBP-File-Name")
    assert read == []
    assert await _rows(world) == 0


async def test_bad_fields_learnt_after_the_bytes_leave_nothing(world: World) -> None:
    fields = UploadFields()  # a form whose name arrives after the file part

    async def form() -> AsyncIterator[bytes]:
        yield b"payload"
        fields.name = "ok.txt"
        fields.metadata = "[not an object]"

    with pytest.raises(InvalidInput, match="JSON object"):
        await world.files.upload(principal=OPERATOR, namespace="acme", fields=fields, chunks=form())
    assert await _rows(world) == 0
    assert _blob_files(world) == []


async def test_sweep_removes_uploads_whose_uploader_died(world: World) -> None:
    now = utcnow()
    async with world.database.unit_of_work() as uow:
        await FileRepository(uow.connection).add_pending(
            namespace="acme",
            file_id="dead-upload",
            name="",
            content_type="application/octet-stream",
            created_at=now,
            created_by="x",
            lease_until=now,
        )
        await uow.commit()
    await world.blobs.put(blob_key("acme", "dead-upload"), _stream(b"orphan"))
    alive = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"kept")
    )
    assert await world.files.sweep() == 1
    assert await world.blobs.size(blob_key("acme", "dead-upload")) is None
    assert await _read(world, alive.id) == b"kept"
    assert await _rows(world) == 1


async def test_delete_removes_the_row_and_the_bytes_and_is_idempotent(world: World) -> None:
    record = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"bye")
    )
    await world.files.delete(principal=OPERATOR, namespace="acme", file_id=record.id)
    await world.files.delete(principal=OPERATOR, namespace="acme", file_id=record.id)
    with pytest.raises(NotFound):
        await world.files.stat(principal=OPERATOR, namespace="acme", file_id=record.id)
    assert await world.blobs.size(record.blob_key) is None
    assert _blob_files(world) == []


async def test_lists_by_name_with_prefix_and_cursor(world: World) -> None:
    names = ["b/2", "a/1", "b/1", "b/1", "c", "B/upper", "b/é"]
    for name in names:
        await world.files.upload(
            principal=OPERATOR, namespace="acme", fields=_fields(name), chunks=_stream(b"-")
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await world.files.list(
            principal=OPERATOR, namespace="acme", prefix="b/", cursor=cursor, limit=2
        )
        seen += [record.name for record in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["b/1", "b/1", "b/2", "b/é"]


async def test_usage_counts_files_and_bytes(world: World) -> None:
    for size in (10, 20, 30):
        await world.files.upload(
            principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"u" * size)
        )
    namespace = await world.namespaces.lookup(name="acme")
    usage = await world.files.usage(namespace="acme", since=namespace.created_at)
    assert (usage.count, usage.bytes) == (3, 60)


async def test_a_deleted_namespace_loses_its_files_and_a_new_one_sees_none(world: World) -> None:
    record = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"old")
    )
    await world.namespaces.delete(principal=OPERATOR, name="acme")
    deleted_at = utcnow()
    await world.namespaces.create(principal=OPERATOR, name="acme")
    # Before the purge ran, the new namespace already sees nothing of the old one.
    with pytest.raises(NotFound):
        await world.files.stat(principal=OPERATOR, namespace="acme", file_id=record.id)
    newer = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"new")
    )
    await world.files.purge_namespace(
        Event(namespace="acme", service="namespace", name="deleted", occurred_at=deleted_at)
    )
    assert await world.blobs.size(record.blob_key) is None
    assert await _read(world, newer.id) == b"new"


async def test_a_sweep_that_claims_an_upload_makes_it_fail_and_leaves_nothing(
    world: World,
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * MiB
        started.set()
        await finish.wait()
        yield b"b"

    upload = asyncio.create_task(
        world.files.upload(principal=OPERATOR, namespace="acme", fields=_fields(), chunks=slow())
    )
    await started.wait()
    # As if its lease had lapsed (a stalled or partitioned uploader): the sweep takes it.
    assert await world.files.sweep(everything=True) == 1
    finish.set()
    with pytest.raises(Conflict):
        await upload
    assert await _rows(world) == 0
    assert _blob_files(world) == []


async def test_a_sweep_leaves_an_upload_that_completed_first_alone(world: World) -> None:
    record = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"done")
    )
    assert await world.files.sweep(everything=True) == 0
    assert await _read(world, record.id) == b"done"


async def test_ids_that_are_not_file_ids_name_no_file(world: World) -> None:
    for bad in ("..", "a\x00b", "x" * 300):
        with pytest.raises(NotFound):
            await world.files.stat(principal=OPERATOR, namespace="acme", file_id=bad)
        await world.files.delete(principal=OPERATOR, namespace="acme", file_id=bad)


async def test_delete_with_a_stale_if_match_changes_nothing(world: World) -> None:
    record = await world.files.upload(
        principal=OPERATOR, namespace="acme", fields=_fields(), chunks=_stream(b"keep")
    )
    with pytest.raises(PreconditionFailed):
        await world.files.delete(
            principal=OPERATOR, namespace="acme", file_id=record.id, if_match=('"other"',)
        )
    assert await _read(world, record.id) == b"keep"
    await world.files.delete(
        principal=OPERATOR, namespace="acme", file_id=record.id, if_match=(record.etag,)
    )
    assert _blob_files(world) == []

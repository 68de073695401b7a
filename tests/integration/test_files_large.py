"""Files at scale against a real `obp serve`: 1 GiB in bounded memory, ranged reads that skip
what precedes them, and an upload killed mid-way leaving nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.helpers import wait_until
from tests.process import ServerProcess

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GiB = 1024 * MiB


def _tree(server: ServerProcess) -> list[psutil.Process]:
    assert server.pid is not None
    root = psutil.Process(server.pid)
    return [root, *root.children(recursive=True)]


def _rss(server: ServerProcess) -> int:
    total = 0
    for process in _tree(server):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _bytes_read(server: ServerProcess) -> int:
    """Bytes the server's processes passed through read() calls, page cache hits included."""
    total = 0
    for process in _tree(server):
        try:
            total += process.io_counters().read_chars
        except psutil.NoSuchProcess:
            continue
    return total


def _block(index: int) -> bytes:
    # Each MiB differs, so a misplaced range cannot pass for the right one.
    return index.to_bytes(8, "big") * (MiB // 8)


def _body(blocks: int, digest: hashlib._Hash) -> Iterator[bytes]:
    for index in range(blocks):
        block = _block(index)
        digest.update(block)
        yield block


def _start(tmp_path: Path) -> ServerProcess:
    env = {"OBP_DATA_DIR": str(tmp_path / "obp-data"), "OBP_FILES_UPLOAD_LEASE_SECONDS": "5"}
    return ServerProcess(env=env, cwd=tmp_path).start()


def test_a_1_gib_upload_keeps_server_memory_far_below_its_size_and_reads_ranges_in_place(
    tmp_path: Path,
) -> None:
    server = _start(tmp_path)
    try:
        with httpx.Client(base_url=server.url, headers=server.admin_headers(), timeout=300) as http:
            assert http.post("/api/v1/namespaces", json={"name": "big"}).status_code == 201
            before = _rss(server)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], _rss(server))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            digest = hashlib.sha256()
            try:
                answer = http.post(
                    "/api/v1/namespaces/big/files",
                    content=_body(GiB // MiB, digest),
                    headers={"X-OBP-File-Name": "one-gib.bin"},
                )
            finally:
                done.set()
                sampler.join()
            assert answer.status_code == 201, answer.text
            stat = answer.json()
            assert (stat["size"], stat["sha256"]) == (GiB, digest.hexdigest())
            growth = peak[0] - before
            print(f"server RSS {before / MiB:.0f} MiB before, peak {peak[0] / MiB:.0f} MiB")
            assert growth < 128 * MiB, f"RSS grew {growth / MiB:.0f} MiB for a 1024 MiB upload"

            middle = GiB // 2 + 12345
            path = f"/api/v1/namespaces/big/files/{stat['id']}"
            http.get(path, headers={"Range": "bytes=0-0"})  # warm every code path first
            read_before = _bytes_read(server)
            part = http.get(path, headers={"Range": f"bytes={middle}-{middle + 4095}"})
            read = _bytes_read(server) - read_before
            assert part.status_code == 206
            whole = b"".join(_block(i) for i in (middle // MiB, middle // MiB + 1))
            offset = middle % MiB
            assert part.content == whole[offset : offset + 4096]
            # The 512 MiB before the range are never read: what is read is the chunk holding
            # the range plus the database's own pages.
            assert read < 8 * MiB, f"a 4 KiB range read {read / MiB:.1f} MiB"
            # pytest keeps the temp folders of recent runs: leave no GiB behind in them.
            assert http.delete(path).status_code == 204
    finally:
        server.stop()


def _leftovers(data_dir: Path) -> tuple[int, list[Path]]:
    with sqlite3.connect(data_dir / "obp.db") as connection:
        rows = connection.execute("SELECT count(*) FROM files").fetchone()[0]
    blobs = [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]
    return int(rows), blobs


def test_an_upload_killed_mid_way_leaves_no_row_and_no_blob_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "obp-data"
    server = _start(tmp_path)
    sent = threading.Event()
    release = threading.Event()

    def stalled() -> Iterator[bytes]:
        for index in range(64):
            yield _block(index)
        sent.set()
        release.wait(60)
        yield b"never"

    def upload() -> None:
        # The server dies under it: the request's failure is the point.
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(base_url=server.url, headers=server.admin_headers()) as http,
        ):
            http.post(
                "/api/v1/namespaces/crash/files",
                content=stalled(),
                headers={"X-OBP-File-Name": "partial.bin"},
                timeout=120,
            )

    with httpx.Client(base_url=server.url, headers=server.admin_headers()) as http:
        assert http.post("/api/v1/namespaces", json={"name": "crash"}).status_code == 201
    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert sent.wait(60), "the upload did not get going"

        def partial_on_disk() -> bool:
            rows, blobs = _leftovers(data_dir)
            return rows == 1 and sum(p.stat().st_size for p in blobs) >= 32 * MiB

        deadline = time.monotonic() + 30
        while not partial_on_disk():
            assert time.monotonic() < deadline, "no pending row and partial blob appeared"
            time.sleep(0.1)
        server.kill()
    finally:
        release.set()
        uploader.join()
    rows, blobs = _leftovers(data_dir)
    assert rows == 1, "the kill should leave a pending row"
    assert blobs, "the kill should leave a partial blob"

    restarted = _start(tmp_path)
    try:

        async def clean() -> bool:
            rows, blobs = _leftovers(data_dir)
            return rows == 0 and blobs == []

        asyncio.run(wait_until(clean, within=20))
        with httpx.Client(base_url=restarted.url, headers=restarted.admin_headers()) as http:
            assert http.get("/api/v1/namespaces/crash/files").json()["items"] == []
    finally:
        restarted.stop()

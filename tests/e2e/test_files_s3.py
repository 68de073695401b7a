"""Files end to end on the S3 blob store: `obp serve` with OBP_BLOB_URL=s3://... against a real
S3 API on loopback (moto's server in CI)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import ServerProcess
from tests.s3 import S3Bucket
from tests.servers import server_url

pytestmark = pytest.mark.s3

MiB = 1024 * 1024
LIMIT = 24 * MiB


def _block(index: int) -> bytes:
    return index.to_bytes(8, "big") * (MiB // 8)


@pytest.fixture(scope="module")
def bucket() -> Iterator[S3Bucket]:
    """A bucket of this module's own, removed afterwards."""
    made = S3Bucket(endpoint=server_url("s3"), name=f"obp-test-{uuid.uuid4().hex}")
    try:
        yield made
    finally:
        asyncio.run(made.remove())


@pytest.fixture(scope="module")
def server(bucket: S3Bucket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`obp serve` keeping file bytes in the S3 bucket."""
    workdir: Path = tmp_path_factory.mktemp("files-s3")
    env = {
        "OBP_DATA_DIR": str(workdir / "obp-data"),
        "OBP_BLOB_URL": bucket.url,
        "OBP_MAX_FILE_BYTES": str(LIMIT),
    }
    with ServerProcess(env=env, cwd=workdir) as process:
        yield process


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    """An httpx client with the global admin's token."""
    with httpx.Client(base_url=server.url, headers=server.admin_headers(), timeout=60) as client:
        yield client


@pytest.fixture
def ns(http: httpx.Client) -> str:
    """A fresh namespace."""
    name = f"s3-{uuid.uuid4().hex[:10]}"
    assert http.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def _objects(bucket: S3Bucket, ns: str) -> list[str]:
    return [key for key in asyncio.run(bucket.listing()) if ns in key]


def test_readyz_probes_the_bucket(http: httpx.Client) -> None:
    checks = http.get("/readyz").json()["checks"]
    assert checks["blobs"]["status"] == "ok"


def test_a_multipart_sized_file_round_trips_with_ranges(
    http: httpx.Client, ns: str, bucket: S3Bucket
) -> None:
    digest = hashlib.sha256()
    blocks = [_block(i) for i in range(20)]  # 20 MiB: three S3 parts
    for block in blocks:
        digest.update(block)
    stored = http.post(
        f"/api/v1/namespaces/{ns}/files",
        content=iter(blocks),
        headers={"X-OBP-File-Name": "twenty.bin"},
    )
    assert stored.status_code == 201, stored.text
    stat = stored.json()
    assert (stat["size"], stat["sha256"]) == (20 * MiB, digest.hexdigest())
    assert _objects(bucket, ns) == [f"{ns}/files/{stat['id']}"]

    path = f"/api/v1/namespaces/{ns}/files/{stat['id']}"
    whole = http.get(path)
    assert hashlib.sha256(whole.content).hexdigest() == stat["sha256"]
    middle = 10 * MiB + 17
    part = http.get(path, headers={"Range": f"bytes={middle}-{middle + 4095}"})
    assert part.status_code == 206
    joined = _block(10) + _block(11)
    assert part.content == joined[17 : 17 + 4096]
    tail = http.get(path, headers={"Range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, _block(19)[-5:])
    assert http.get(path, headers={"Range": f"bytes={20 * MiB}-"}).status_code == 416

    assert http.delete(path).status_code == 204
    assert _objects(bucket, ns) == []


def test_an_upload_over_the_limit_leaves_no_object_and_no_unfinished_upload(
    http: httpx.Client, ns: str, bucket: S3Bucket
) -> None:
    answer = http.post(
        f"/api/v1/namespaces/{ns}/files",
        content=(_block(i) for i in range(LIMIT // MiB + 1)),
        headers={"X-OBP-File-Name": "too-big.bin"},
    )
    assert answer.status_code == 413
    assert _objects(bucket, ns) == []
    assert http.get(f"/api/v1/namespaces/{ns}/files").json()["items"] == []


def test_deleting_a_namespace_deletes_its_objects(
    http: httpx.Client, ns: str, bucket: S3Bucket
) -> None:
    for name in ("a", "b"):
        http.post(
            f"/api/v1/namespaces/{ns}/files", content=b"x" * 100, headers={"X-OBP-File-Name": name}
        )
    assert len(_objects(bucket, ns)) == 2
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code == 204
    deadline = time.monotonic() + 20
    while _objects(bucket, ns):
        assert time.monotonic() < deadline, "the namespace's objects outlived it"
        time.sleep(0.2)

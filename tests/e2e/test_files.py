"""Files end to end over HTTP: uploads, ranged downloads, validators, errors, usage, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obp.client import ObpApiError
from tests.postgres import fresh_database_sync
from tests.process import ServerProcess
from tests.servers import server_url

LIMIT = 4 * 1024 * 1024
DATA = bytes(range(256)) * 4096  # 1 MiB, every byte value, position-dependent


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`obp serve` with a small file limit, on SQLite and on PostgreSQL."""
    workdir: Path = tmp_path_factory.mktemp(f"files-{request.param}")
    env = {"OBP_DATA_DIR": str(workdir / "obp-data"), "OBP_MAX_FILE_BYTES": str(LIMIT)}
    if request.param == "sqlite":
        with ServerProcess(env=env, cwd=workdir) as process:
            yield process
        return
    with (
        fresh_database_sync(server_url("postgres")) as database_url,
        ServerProcess(env={**env, "OBP_DATABASE_URL": database_url}, cwd=workdir) as process,
    ):
        yield process


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    """An httpx client with the global admin's token."""
    with httpx.Client(base_url=server.url, headers=server.admin_headers(), timeout=30) as client:
        yield client


@pytest.fixture
def ns(http: httpx.Client) -> str:
    """A fresh namespace."""
    name = f"files-{uuid.uuid4().hex[:10]}"
    assert http.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def _upload(
    http: httpx.Client, ns: str, data: bytes = DATA, name: str = "data.bin"
) -> dict[str, Any]:
    response = http.post(
        f"/api/v1/namespaces/{ns}/files",
        content=data,
        headers={"X-OBP-File-Name": name, "Content-Type": "application/x-test"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_raw_upload_answers_201_with_sha256_size_and_location(http: httpx.Client, ns: str) -> None:
    response = http.post(
        f"/api/v1/namespaces/{ns}/files",
        content=DATA,
        headers={
            "X-OBP-File-Name": "dir/r%C3%A9sum%C3%A9.pdf",
            "Content-Type": "application/pdf",
            "X-OBP-Metadata": '{"owner": "ann"}',
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert (body["size"], body["name"], body["content_type"]) == (
        len(DATA),
        "dir/résumé.pdf",
        "application/pdf",
    )
    assert body["metadata"] == {"owner": "ann"}
    assert response.headers["Location"].endswith(f"/files/{body['id']}")
    assert response.headers["ETag"] == f'"{body["sha256"]}"'
    stat = http.get(f"/api/v1/namespaces/{ns}/files/{body['id']}/stat").json()
    assert stat == body


def test_multipart_upload_takes_name_type_and_metadata_from_the_form(
    http: httpx.Client, ns: str
) -> None:
    response = http.post(
        f"/api/v1/namespaces/{ns}/files",
        files={"file": ("photo.png", DATA, "image/png")},
        data={"metadata": json.dumps({"album": 7})},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["content_type"], body["metadata"]) == (
        "photo.png",
        "image/png",
        {"album": 7},
    )
    download = http.get(f"/api/v1/namespaces/{ns}/files/{body['id']}")
    assert download.content == DATA
    assert download.headers["content-type"] == "image/png"


def test_download_answers_every_single_range_form_with_206(http: httpx.Client, ns: str) -> None:
    file_id = _upload(http, ns)["id"]
    path = f"/api/v1/namespaces/{ns}/files/{file_id}"
    size = len(DATA)
    for header, start, end in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1999", 1000, 1999),
        (f"bytes={size - 10}-", size - 10, size - 1),
        ("bytes=-300", size - 300, size - 1),
        (f"bytes=500000-{size * 2}", 500000, size - 1),
    ]:
        answer = http.get(path, headers={"Range": header})
        assert answer.status_code == 206, header
        assert answer.content == DATA[start : end + 1], header
        assert answer.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert answer.headers["Content-Length"] == str(end - start + 1)
        assert answer.headers["Accept-Ranges"] == "bytes"


def test_unsatisfiable_ranges_answer_416_with_the_size(http: httpx.Client, ns: str) -> None:
    file_id = _upload(http, ns)["id"]
    for header in (f"bytes={len(DATA)}-", "bytes=-0"):
        answer = http.get(f"/api/v1/namespaces/{ns}/files/{file_id}", headers={"Range": header})
        assert answer.status_code == 416
        assert answer.headers["Content-Range"] == f"bytes */{len(DATA)}"
        assert answer.headers["content-type"] == "application/problem+json"


def test_several_ranges_or_a_stale_if_range_get_the_whole_file(http: httpx.Client, ns: str) -> None:
    stat = _upload(http, ns)
    path = f"/api/v1/namespaces/{ns}/files/{stat['id']}"
    several = http.get(path, headers={"Range": "bytes=0-1,5-9"})
    assert (several.status_code, several.content) == (200, DATA)
    stale = http.get(path, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (stale.status_code, stale.content) == (200, DATA)
    fresh = http.get(path, headers={"Range": "bytes=0-9", "If-Range": f'"{stat["sha256"]}"'})
    assert (fresh.status_code, fresh.content) == (206, DATA[:10])


def test_if_none_match_answers_304_without_a_body(http: httpx.Client, ns: str) -> None:
    stat = _upload(http, ns)
    path = f"/api/v1/namespaces/{ns}/files/{stat['id']}"
    answer = http.get(path, headers={"If-None-Match": f'"x", "{stat["sha256"]}"'})
    assert (answer.status_code, answer.content) == (304, b"")
    assert answer.headers["ETag"] == f'"{stat["sha256"]}"'
    assert http.get(path, headers={"If-None-Match": '"x"'}).status_code == 200


def test_head_answers_the_headers_of_get_without_the_bytes(http: httpx.Client, ns: str) -> None:
    stat = _upload(http, ns)
    path = f"/api/v1/namespaces/{ns}/files/{stat['id']}"
    whole = http.head(path)
    assert (whole.status_code, whole.content) == (200, b"")
    assert whole.headers["Content-Length"] == str(len(DATA))
    assert whole.headers["ETag"] == f'"{stat["sha256"]}"'
    part = http.head(path, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.headers["Content-Length"]) == (206, "10")


def test_bad_upload_fields_are_422_naming_the_header_and_store_nothing(
    http: httpx.Client, ns: str
) -> None:
    path = f"/api/v1/namespaces/{ns}/files"
    for headers, loc in [
        ({}, ["header", "X-OBP-File-Name"]),
        ({"X-OBP-File-Name": "a%00b"}, ["header", "X-OBP-File-Name"]),
        ({"X-OBP-File-Name": "%FF"}, ["header", "X-OBP-File-Name"]),
        ({"X-OBP-File-Name": "a", "X-OBP-Metadata": "[1]"}, ["header", "X-OBP-Metadata"]),
        ({"X-OBP-File-Name": "a", "Content-Type": "nonsense"}, ["header", "Content-Type"]),
    ]:
        answer = http.post(path, content=b"abc", headers=headers)
        assert answer.status_code == 422, (headers, answer.text)
        assert answer.json()["errors"][0]["loc"] == loc
    malformed = http.post(
        path,
        content=b"--b\r\nnot a form",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert malformed.status_code == 422
    assert http.get(path).json()["items"] == []


def test_a_file_over_the_limit_is_413_and_leaves_nothing(http: httpx.Client, ns: str) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(LIMIT // len(DATA) + 1):
            yield DATA

    answer = http.post(
        f"/api/v1/namespaces/{ns}/files", content=body(), headers={"X-OBP-File-Name": "big"}
    )
    assert answer.status_code == 413
    assert str(LIMIT) in answer.json()["detail"]
    assert http.get(f"/api/v1/namespaces/{ns}/files").json()["items"] == []


def test_list_delete_and_namespace_usage(http: httpx.Client, ns: str) -> None:
    kept = _upload(http, ns, b"k" * 100, name="keep/a")
    gone = _upload(http, ns, b"g" * 50, name="gone/b")
    usage = http.get(f"/api/v1/namespaces/{ns}").json()["usage"]["files"]
    assert usage == {"count": 2, "bytes": 150}
    listed = http.get(f"/api/v1/namespaces/{ns}/files", params={"prefix": "keep/"}).json()
    assert [item["id"] for item in listed["items"]] == [kept["id"]]
    path = f"/api/v1/namespaces/{ns}/files/{gone['id']}"
    assert http.delete(path).status_code == 204
    assert http.delete(path).status_code == 204
    assert http.get(path).status_code == 404
    assert http.get(f"{path}/stat").status_code == 404
    usage = http.get(f"/api/v1/namespaces/{ns}").json()["usage"]["files"]
    assert usage == {"count": 1, "bytes": 100}


def test_sdk_streams_files_both_ways(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(DATA * 3)
    with server.client() as sdk:
        ns = f"sdk-{uuid.uuid4().hex[:10]}"
        sdk.namespaces.create(ns)
        stat = sdk.files.put(ns, source, metadata={"a": 1})
        assert (stat["name"], stat["content_type"], stat["size"]) == (
            "notes.txt",
            "text/plain",
            3 * len(DATA),
        )
        target = tmp_path / "back.txt"
        with target.open("wb") as out:
            assert sdk.files.download(ns, stat["id"], out) == 3 * len(DATA)
        assert target.read_bytes() == DATA * 3
        with (tmp_path / "part").open("wb") as out:
            sdk.files.download(ns, stat["id"], out, start=10, end=19)
        assert (tmp_path / "part").read_bytes() == (DATA * 3)[10:20]
        assert [item["id"] for item in sdk.files.iterate(ns)] == [stat["id"]]
        sdk.files.delete(ns, stat["id"])
        with pytest.raises(ObpApiError) as raised:
            sdk.files.stat(ns, stat["id"])
        assert raised.value.status == 404


def test_deleting_a_namespace_deletes_its_blobs(http: httpx.Client, server: ServerProcess) -> None:
    ns = f"gone-{uuid.uuid4().hex[:10]}"
    assert http.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    stored = _upload(http, ns)
    blobs = Path(server.env["OBP_DATA_DIR"]) / "blobs" / ns
    assert [p.name for p in blobs.rglob("*") if p.is_file()] == [stored["id"]]
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code == 204
    deadline = time.monotonic() + 20
    while any(p.is_file() for p in blobs.rglob("*")):
        assert time.monotonic() < deadline, "the namespace's blobs outlived it"
        time.sleep(0.1)


def test_crafted_ids_prefixes_cursors_and_ranges_get_4xx_never_500(
    http: httpx.Client, ns: str
) -> None:
    stat = _upload(http, ns)
    base = f"/api/v1/namespaces/{ns}/files"
    for path in (f"{base}/a%00b", f"{base}/a%00b/stat", f"{base}/%2E%2E"):
        assert http.get(path).status_code == 404, path
    assert http.delete(f"{base}/a%00b").status_code == 204
    prefix = http.get(base, params={"prefix": "\x00"})
    assert prefix.status_code == 422
    assert prefix.json()["errors"][0]["loc"] == ["query", "prefix"]
    for name in ("\x00", "\ud800"):
        inner = json.dumps([name, stat["id"]])
        raw = json.dumps({"after": inner}).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        answer = http.get(base, params={"cursor": cursor})
        assert answer.status_code == 422, answer.text
    huge = http.get(f"{base}/{stat['id']}", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert (huge.status_code, len(huge.content)) == (200, len(DATA))


def test_if_match_guards_reads_and_deletes(http: httpx.Client, ns: str) -> None:
    stat = _upload(http, ns)
    path = f"/api/v1/namespaces/{ns}/files/{stat['id']}"
    assert http.get(path, headers={"If-Match": '"other"'}).status_code == 412
    assert http.get(path, headers={"If-Match": f'"{stat["sha256"]}"'}).status_code == 200
    assert http.delete(path, headers={"If-Match": '"other"'}).status_code == 412
    assert http.get(path).status_code == 200
    assert http.delete(path, headers={"If-Match": "*"}).status_code == 204
    assert http.get(path).status_code == 404


def test_downloads_keep_the_stored_type_and_are_never_sniffed(http: httpx.Client, ns: str) -> None:
    answer = http.post(
        f"/api/v1/namespaces/{ns}/files",
        content=b"<script>alert(1)</script>",
        headers={"X-OBP-File-Name": "page.html", "Content-Type": "text/html"},
    )
    path = f"/api/v1/namespaces/{ns}/files/{answer.json()['id']}"
    download = http.get(path)
    assert download.headers["content-type"] == "text/html"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"] == "sandbox"


def test_the_sdk_never_lets_a_dot_id_reach_the_namespace(server: ServerProcess) -> None:
    with server.client() as sdk:
        ns = f"dots-{uuid.uuid4().hex[:10]}"
        sdk.namespaces.create(ns)
        sdk.files.delete(ns, "..")
        sdk.files.delete(ns, ".")
        assert sdk.namespaces.get(ns)["name"] == ns

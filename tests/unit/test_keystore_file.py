"""The master key file: created 0600, refused when others may read it, never leaked."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from obp.adapters import keystore_file
from obp.adapters.keystore_file import FileKeyStore
from obp.adapters.registry import KEYSTORES
from obp.kernel.errors import ConfigurationError, Sealed

AAD = b"context"
KEY = "A" * 43  # 32 bytes of base64url without padding


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "obp-data" / "master.key"


@pytest_asyncio.fixture
async def store(path: Path) -> AsyncIterator[FileKeyStore]:
    opened = FileKeyStore(path)
    await opened.open(create=True)
    try:
        yield opened
    finally:
        await opened.close()


def write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def root_keys(path: Path) -> list[bytes]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return [base64.urlsafe_b64decode(line.split()[1] + "=") for line in lines]


async def test_the_created_file_and_its_lock_have_mode_0600(
    store: FileKeyStore, path: Path
) -> None:
    assert mode(path) == 0o600
    assert mode(path.with_name("master.key.lock")) == 0o600
    assert mode(path.parent) == 0o700
    assert [len(key) for key in root_keys(path)] == [32]
    assert store.current_version == "f1"


async def test_rotate_keeps_mode_0600_and_leaves_no_temporary_file(
    store: FileKeyStore, path: Path
) -> None:
    assert await store.rotate() == "f2"

    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key", "master.key.lock"]
    assert len(root_keys(path)) == 2


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660])
async def test_a_file_others_may_read_is_refused(path: Path, bad_mode: int) -> None:
    path.parent.mkdir()
    write(path, f"f1 {KEY}\n", bad_mode)

    with pytest.raises(ConfigurationError) as raised:
        await FileKeyStore(path).open(create=False)

    assert f"chmod 600 {path}" in raised.value.detail
    assert f"{bad_mode:04o}" in raised.value.detail


async def test_a_missing_file_is_sealed_and_names_the_backup(path: Path) -> None:
    with pytest.raises(Sealed, match="restore it from your backup") as raised:
        await FileKeyStore(path).open(create=False)

    assert str(path) in raised.value.detail
    assert not path.exists()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "f1\n",
        f"f1 {KEY} extra\n",
        "f1 not-base64!!\n",
        f"f1 {'A' * 22}\n",  # 16 bytes: not a 256-bit key
        f"v1 {KEY}\n",
        f"f2 {KEY}\nf1 {KEY}\n",
        f"f1 {KEY}\nf1 {KEY}\n",
        "\u00e9\n",
    ],
)
async def test_a_corrupt_file_is_sealed(path: Path, text: str) -> None:
    path.parent.mkdir()
    write(path, text)

    with pytest.raises(Sealed, match=r"restore it from your backup|corrupt"):
        await FileKeyStore(path).open(create=True)


async def test_key_material_never_appears_in_wrapped_output_or_repr(
    store: FileKeyStore, path: Path
) -> None:
    await store.rotate()
    secrets = root_keys(path)
    plain = os.urandom(32)

    for _ in range(10):
        _, wrapped = await store.wrap(plain, aad=AAD)
        assert plain not in wrapped
        assert all(secret not in wrapped for secret in secrets)
    assert all(secret.hex() not in repr(store) for secret in secrets)
    assert "A" * 43 not in repr(store)


async def test_a_file_deleted_while_running_fails_the_ping(store: FileKeyStore, path: Path) -> None:
    path.unlink()

    with pytest.raises(Sealed, match="restore it from your backup"):
        await store.ping()


async def test_open_create_does_not_replace_an_existing_file(path: Path) -> None:
    path.parent.mkdir()
    write(path, f"f7 {KEY}\n")
    store = FileKeyStore(path)

    await store.open(create=True)

    assert store.current_version == "f7"
    assert path.read_text() == f"f7 {KEY}\n"
    await store.close()


def test_the_url_chooses_the_file(tmp_path: Path) -> None:
    default = keystore_file.create("file://", data_dir=tmp_path)
    absolute = keystore_file.create("file:///srv/obp/keys/master.key", data_dir=tmp_path)

    assert default.path == tmp_path / "master.key"
    assert absolute.path == Path("/srv/obp/keys/master.key")
    assert isinstance(KEYSTORES.create("file://", data_dir=tmp_path), FileKeyStore)


@pytest.mark.parametrize("url", ["file://host/master.key", "file:///k?mode=0600", "files://"])
def test_other_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError):
        KEYSTORES.create(url, data_dir=tmp_path)

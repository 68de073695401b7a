"""The KeyStore contract, run against the master key file and a PKCS#11 token (SoftHSM2)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from obp.adapters.keystore_file import FileKeyStore
from obp.adapters.keystore_pkcs11 import Pkcs11KeyStore
from obp.kernel.errors import Sealed, TamperedError
from obp.kernel.ports import KeyStore
from tests.softhsm import SoftHsmToken

# Until tests/conftest.py imports it, the session fixture is made available here.
AAD = b"namespace=acme;secret=db-password"


class Stores:
    """Makes store instances over one backing (a file, or a token and label prefix)."""

    def __init__(self, tmp_path: Path, token: SoftHsmToken | None) -> None:
        self.token = token
        self.path = tmp_path / "master.key"
        self.prefix = f"obp-test-{uuid.uuid4().hex[:12]}-"
        self.made: list[KeyStore] = []

    def __call__(self) -> KeyStore:
        store: KeyStore
        if self.token is None:
            store = FileKeyStore(self.path)
        else:
            store = Pkcs11KeyStore(
                self.token.library, self.token.label, self.token.pin, label_prefix=self.prefix
            )
        self.made.append(store)
        return store

    def in_child(self, body: str) -> None:
        """Run `body` (async code using `store`) in another process on the same backing."""
        if self.token is None:
            build = f"FileKeyStore(Path({str(self.path)!r}))"
        else:
            build = (
                f"Pkcs11KeyStore({self.token.library!r}, {self.token.label!r}, "
                f"os.environ['OBP_KEYSTORE_PIN'], label_prefix={self.prefix!r})"
            )
        script = (
            "import asyncio, os\n"
            "from pathlib import Path\n"
            "from obp.adapters.keystore_file import FileKeyStore\n"
            "from obp.adapters.keystore_pkcs11 import Pkcs11KeyStore\n"
            "async def main():\n"
            f"    store = {build}\n"
            "    await store.open(create=False)\n"
            f"{textwrap.indent(body, '    ')}\n"
            "    await store.close()\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, **(self.token.env if self.token else {})}
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)


@pytest_asyncio.fixture(params=["file", "pkcs11"])
async def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Makes closed store instances over the same backing, closed and cleaned up afterwards."""
    token = request.getfixturevalue("softhsm_token") if request.param == "pkcs11" else None
    stores = Stores(tmp_path, token)
    try:
        yield stores
    finally:
        for store in stores.made:
            await store.close()
        if token is not None:
            token.purge(stores.prefix)  # the token outlives this test: leave it as it was


@pytest_asyncio.fixture
async def store(new_store: Stores) -> KeyStore:
    """An open store with a first root key."""
    opened = new_store()
    await opened.open(create=True)
    return opened


def flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


async def test_ping_and_backend_name(store: KeyStore) -> None:
    await store.ping()
    assert store.backend in ("file", "pkcs11")


async def test_wrap_then_unwrap_round_trips_a_256_bit_key(store: KeyStore) -> None:
    key = os.urandom(32)

    version, wrapped = await store.wrap(key, aad=AAD)

    assert version == store.current_version
    assert await store.unwrap(version, wrapped, aad=AAD) == key


async def test_unwrap_with_other_associated_data_is_tampered(store: KeyStore) -> None:
    version, wrapped = await store.wrap(os.urandom(32), aad=AAD)

    with pytest.raises(TamperedError):
        await store.unwrap(version, wrapped, aad=b"namespace=other;secret=db-password")


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
async def test_a_flipped_bit_is_tampered(store: KeyStore, where: str) -> None:
    version, wrapped = await store.wrap(os.urandom(32), aad=AAD)
    index = {"nonce": 0, "ciphertext": 12, "tag": len(wrapped) - 1}[where]

    with pytest.raises(TamperedError):
        await store.unwrap(version, flipped(wrapped, index), aad=AAD)


@pytest.mark.parametrize("length", [0, 12, 27])
async def test_truncated_wrapped_bytes_are_tampered(store: KeyStore, length: int) -> None:
    version, wrapped = await store.wrap(os.urandom(32), aad=AAD)

    with pytest.raises(TamperedError):
        await store.unwrap(version, wrapped[:length], aad=AAD)


async def test_wrapping_twice_gives_different_bytes(store: KeyStore) -> None:
    key = os.urandom(32)

    first = await store.wrap(key, aad=AAD)
    second = await store.wrap(key, aad=AAD)

    assert first[1] != second[1]
    assert first[1][:12] != second[1][:12]


async def test_rotate_makes_a_new_current_version_and_old_wraps_still_unwrap(
    store: KeyStore,
) -> None:
    key = os.urandom(32)
    old_version, old_wrapped = await store.wrap(key, aad=AAD)

    new_version = await store.rotate()

    assert new_version != old_version
    assert store.current_version == new_version
    assert await store.versions() == [old_version, new_version]
    assert (await store.wrap(key, aad=AAD))[0] == new_version
    assert await store.unwrap(old_version, old_wrapped, aad=AAD) == key


async def test_destroy_seals_the_old_versions_wraps_and_keeps_current_ones(
    store: KeyStore,
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    old_version, old_wrapped = await store.wrap(old_key, aad=AAD)
    await store.rotate()
    new_version, new_wrapped = await store.wrap(new_key, aad=AAD)

    await store.destroy(old_version)

    assert await store.versions() == [new_version]
    with pytest.raises(Sealed, match="not in the key store"):
        await store.unwrap(old_version, old_wrapped, aad=AAD)
    assert await store.unwrap(new_version, new_wrapped, aad=AAD) == new_key
    await store.destroy(old_version)  # again: nothing left to do


async def test_destroying_the_current_version_is_refused(store: KeyStore) -> None:
    key = os.urandom(32)
    version, wrapped = await store.wrap(key, aad=AAD)

    with pytest.raises(ValueError, match="current"):
        await store.destroy(version)

    assert await store.unwrap(version, wrapped, aad=AAD) == key


async def test_unknown_version_is_sealed(store: KeyStore) -> None:
    _, wrapped = await store.wrap(os.urandom(32), aad=AAD)

    with pytest.raises(Sealed, match="not in the key store"):
        await store.unwrap("999999", wrapped, aad=AAD)


async def test_open_without_create_on_an_empty_store_is_sealed(new_store: Stores) -> None:
    empty = new_store()

    with pytest.raises(Sealed):
        await empty.open(create=False)
    with pytest.raises(Sealed):
        await empty.ping()


async def test_a_store_that_is_not_open_is_sealed(new_store: Stores) -> None:
    closed = new_store()

    with pytest.raises(Sealed):
        await closed.ping()
    with pytest.raises(Sealed):
        await closed.wrap(b"k", aad=AAD)
    with pytest.raises(Sealed):
        _ = closed.current_version


async def test_a_reopened_store_unwraps_what_the_first_wrapped(new_store: Stores) -> None:
    first = new_store()
    await first.open(create=True)
    key = os.urandom(32)
    version, wrapped = await first.wrap(key, aad=AAD)
    await first.close()
    with pytest.raises(Sealed):
        await first.ping()

    second = new_store()
    await second.open(create=False)

    assert second.current_version == version
    assert await second.unwrap(version, wrapped, aad=AAD) == key


async def test_another_instance_sees_rotation_and_destruction(new_store: Stores) -> None:
    """Several workers share one store: one rotates and destroys, the others follow."""
    rotator, other = new_store(), new_store()
    await rotator.open(create=True)
    await other.open(create=False)
    old_version = other.current_version

    new_version = await rotator.rotate()
    key = os.urandom(32)
    wrapped = (await rotator.wrap(key, aad=AAD))[1]
    assert await other.unwrap(new_version, wrapped, aad=AAD) == key

    await rotator.destroy(old_version)
    version, _ = await other.wrap(key, aad=AAD)
    assert version == new_version
    assert await other.versions() == [new_version]


async def test_closing_one_instance_leaves_the_other_working(new_store: Stores) -> None:
    first, second = new_store(), new_store()
    await first.open(create=True)
    await second.open(create=False)

    await first.close()

    key = os.urandom(32)
    version, wrapped = await second.wrap(key, aad=AAD)
    assert await second.unwrap(version, wrapped, aad=AAD) == key
    await second.ping()


async def test_another_process_rotating_and_destroying_is_followed(new_store: Stores) -> None:
    store = new_store()
    await store.open(create=True)
    old_version = store.current_version
    key = os.urandom(32)

    await asyncio.to_thread(
        new_store.in_child,
        "old = store.current_version\nawait store.rotate()\nawait store.destroy(old)",
    )

    version, wrapped = await store.wrap(key, aad=AAD)
    assert version != old_version
    assert await store.versions() == [version]
    assert await store.unwrap(version, wrapped, aad=AAD) == key
    await store.ping()


async def test_concurrent_wraps_and_unwraps(store: KeyStore) -> None:
    keys = [os.urandom(32) for _ in range(64)]

    wrapped = await asyncio.gather(*(store.wrap(key, aad=AAD) for key in keys))
    unwrapped = await asyncio.gather(*(store.unwrap(v, w, aad=AAD) for v, w in wrapped))

    assert unwrapped == keys
    assert len({w for _, w in wrapped}) == len(keys)

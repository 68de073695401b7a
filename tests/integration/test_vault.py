"""The vault on every database engine: envelope encryption, rotation, shredding, sealing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey

from obp.adapters.db import Database
from obp.adapters.keystore_file import FileKeyStore
from obp.kernel.errors import (
    ConfigurationError,
    InvalidInput,
    NotFound,
    Sealed,
    TamperedError,
)
from obp.kernel.events import Event
from obp.services.vault import VaultService
from obp.services.vault import service as vault_module
from obp.services.vault.model import key_id_of
from obp.services.vault.tables import vault_data_keys, vault_key_pairs


@pytest_asyncio.fixture
async def keystore_path(tmp_path: Path) -> Path:
    """Where this test's master key lives."""
    return tmp_path / "master.key"


async def _vault(database: Database, path: Path) -> VaultService:
    vault = VaultService(unit_of_work=database.unit_of_work, keystore=FileKeyStore(path))
    await vault.start()
    return vault


@pytest_asyncio.fixture
async def vault(database: Database, keystore_path: Path) -> AsyncIterator[VaultService]:
    """A started vault on a file key store."""
    started = await _vault(database, keystore_path)
    try:
        yield started
    finally:
        await started.close()


async def _fresh(database: Database, path: Path) -> VaultService:
    """Another replica's vault: same database and key store, nothing cached."""
    return await _vault(database, path)


def _deleted(namespace: str) -> Event:
    return Event(namespace=namespace, service="namespace", name="deleted")


async def test_unseal_returns_what_was_sealed(vault: VaultService) -> None:
    sealed = await vault.seal(namespace="acme", plaintext=b"card 4242", aad=b"invoice:1")
    assert b"card 4242" not in sealed
    assert await vault.unseal(namespace="acme", sealed=sealed, aad=b"invoice:1") == b"card 4242"


@pytest.mark.parametrize("position", [0, 5, 25, 40, -1])
async def test_any_altered_byte_is_detected(vault: VaultService, position: int) -> None:
    sealed = bytearray(await vault.seal(namespace="acme", plaintext=b"payload" * 4))
    sealed[position] ^= 0x01
    with pytest.raises((TamperedError, NotFound, InvalidInput)):
        await vault.unseal(namespace="acme", sealed=bytes(sealed))


async def test_other_associated_data_is_refused(vault: VaultService) -> None:
    sealed = await vault.seal(namespace="acme", plaintext=b"x", aad=b"secret:a")
    with pytest.raises(TamperedError):
        await vault.unseal(namespace="acme", sealed=sealed, aad=b"secret:b")


async def test_data_of_one_namespace_does_not_unseal_in_another(vault: VaultService) -> None:
    sealed = await vault.seal(namespace="acme", plaintext=b"x")
    await vault.seal(namespace="umbrella", plaintext=b"y")
    with pytest.raises(NotFound):
        await vault.unseal(namespace="umbrella", sealed=sealed)


async def test_data_key_rotation_keeps_old_data_readable_and_seals_new_data_with_new_key(
    vault: VaultService, database: Database, keystore_path: Path
) -> None:
    old = await vault.seal(namespace="acme", plaintext=b"old")
    new_key = await vault.rotate_data_key(namespace="acme")
    new = await vault.seal(namespace="acme", plaintext=b"new")
    assert key_id_of(new) == new_key != key_id_of(old)
    replica = await _fresh(database, keystore_path)
    assert await replica.unseal(namespace="acme", sealed=old) == b"old"
    assert await replica.unseal(namespace="acme", sealed=new) == b"new"
    assert key_id_of(await replica.seal(namespace="acme", plaintext=b"z")) == new_key
    await replica.close()


async def _data_key_rows(database: Database) -> dict[str, tuple[str, bytes]]:
    async with database.unit_of_work(write=False) as uow:
        rows = await uow.connection.execute(
            sa.select(
                vault_data_keys.c.key_id, vault_data_keys.c.root_version, vault_data_keys.c.wrapped
            )
        )
        return {key_id: (version, bytes(wrapped)) for key_id, version, wrapped in rows}


async def test_root_rotation_rewraps_every_data_key_and_leaves_data_alone(
    vault: VaultService, database: Database, keystore_path: Path
) -> None:
    sealed = {ns: await vault.seal(namespace=ns, plaintext=ns.encode()) for ns in ("a", "b", "c")}
    await vault.rotate_data_key(namespace="a")
    before = await _data_key_rows(database)
    old_root = vault.status.root_version

    rotation = await vault.rotate_root()

    after = await _data_key_rows(database)
    assert rotation.rewrapped == len(before) == 4
    assert rotation.destroyed == [old_root]
    assert set(after) == set(before)
    for key_id, (version, wrapped) in after.items():
        assert version == rotation.root_version
        assert wrapped != before[key_id][1]
    replica = await _fresh(database, keystore_path)
    reopened = FileKeyStore(keystore_path)
    await reopened.open(create=False)
    assert await reopened.versions() == [rotation.root_version]
    await reopened.close()
    for ns, data in sealed.items():
        assert await replica.unseal(namespace=ns, sealed=data) == ns.encode()
    await replica.close()


async def test_deleting_a_namespace_shreds_its_keys(
    vault: VaultService, database: Database, keystore_path: Path
) -> None:
    sealed = await vault.seal(namespace="acme", plaintext=b"gone")
    await vault.signing_key(namespace="acme")
    kept = await vault.seal(namespace="other", plaintext=b"kept")

    await vault.purge_namespace(_deleted("acme"))

    async with database.unit_of_work(write=False) as uow:
        for table in (vault_data_keys, vault_key_pairs):
            left = await uow.connection.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.namespace == "acme")
            )
            assert left == 0
    replica = await _fresh(database, keystore_path)
    with pytest.raises(NotFound, match="destroyed"):
        await vault.unseal(namespace="acme", sealed=sealed)
    with pytest.raises(NotFound, match="destroyed"):
        await replica.unseal(namespace="acme", sealed=sealed)
    # A namespace created again under the same name gets new keys, not the old ones back.
    again = await replica.seal(namespace="acme", plaintext=b"new life")
    assert key_id_of(again) != key_id_of(sealed)
    with pytest.raises(NotFound):
        await replica.unseal(namespace="acme", sealed=sealed)
    assert await replica.unseal(namespace="other", sealed=kept) == b"kept"
    await replica.close()


async def test_keys_made_after_the_deletion_survive_its_purge(vault: VaultService) -> None:
    deleted = _deleted("acme")
    sealed = await vault.seal(namespace="acme", plaintext=b"re-created")  # after the event
    await vault.purge_namespace(deleted)
    assert await vault.unseal(namespace="acme", sealed=sealed) == b"re-created"


async def test_signing_keys_sign_verifiable_tokens_and_rotate_keeping_old_public_keys(
    vault: VaultService,
) -> None:
    first = await vault.signing_key(namespace="acme")
    assert (await vault.signing_key(namespace="acme")).kid == first.kid
    token = jwt.encode(
        {"alg": "ES256", "kid": first.kid}, {"sub": "alice"}, ECKey.import_key(first.private_pem)
    )
    await vault.rotate_signing_key(namespace="acme")
    second = await vault.signing_key(namespace="acme")
    assert second.kid != first.kid
    pairs = await vault.key_pairs(namespace="acme")
    assert [(p.kid, p.active) for p in pairs] == [(second.kid, True), (first.kid, False)]
    old_public = ECKey.import_key(pairs[1].public_jwk)
    assert jwt.decode(token, old_public).claims["sub"] == "alice"
    assert "d" not in pairs[1].public_jwk


async def test_vault_starts_sealed_when_its_master_key_is_missing_and_unseals_when_back(
    vault: VaultService,
    database: Database,
    keystore_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sealed_data = await vault.seal(namespace="acme", plaintext=b"x")
    saved = keystore_path.read_bytes()
    keystore_path.unlink()
    replica = await _fresh(database, keystore_path)
    assert replica.status.sealed
    assert "missing" in (replica.status.reason or "")
    assert not keystore_path.exists(), "a vault with keys must never mint a new master key"
    with pytest.raises(Sealed, match="sealed"):
        await replica.unseal(namespace="acme", sealed=sealed_data)
    with pytest.raises(Sealed):
        await replica.ping()

    fd = os.open(keystore_path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, saved)
    os.close(fd)
    monkeypatch.setattr(vault_module, "REOPEN_SECONDS", 0.0)
    assert await replica.unseal(namespace="acme", sealed=sealed_data) == b"x"
    assert not replica.status.sealed
    await replica.close()


async def test_refuses_to_start_with_a_master_key_others_can_read(
    database: Database, keystore_path: Path
) -> None:
    started = await _vault(database, keystore_path)
    await started.close()
    keystore_path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        await _vault(database, keystore_path)

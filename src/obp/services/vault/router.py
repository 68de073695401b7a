"""Vault HTTP routes: operator status and rotations, and namespace public keys."""

from __future__ import annotations

from fastapi import APIRouter

from obp.http.deps import PlatformDep, PrincipalDep
from obp.http.problems import problem_responses
from obp.services.vault.schemas import (
    DataKeyRotationRead,
    PublicKeySet,
    RootRotationRead,
    VaultStatusRead,
)

router = APIRouter(tags=["vault"])


@router.get("/api/v1/vault", summary="Vault status: sealed or not, and why")
async def vault_status(platform: PlatformDep, principal: PrincipalDep) -> VaultStatusRead:
    """The key store's state; a sealed vault says why."""
    status = await platform.vault_admin.status(principal=principal)
    return VaultStatusRead(
        sealed=status.sealed,
        reason=status.reason,
        keystore=status.keystore,
        root_version=status.root_version,
    )


@router.post(
    "/api/v1/vault/root/rotate",
    responses=problem_responses(503),
    summary="Rotate the root key: re-wrap every data key, then destroy the old root key",
)
async def rotate_root(platform: PlatformDep, principal: PrincipalDep) -> RootRotationRead:
    """Data is not touched: only the wrapping of the data keys changes."""
    rotation = await platform.vault_admin.rotate_root(principal=principal)
    return RootRotationRead(
        root_version=rotation.root_version,
        rewrapped=rotation.rewrapped,
        destroyed=rotation.destroyed,
    )


@router.post(
    "/api/v1/namespaces/{ns}/vault/data-key/rotate",
    responses=problem_responses(404, 503),
    summary="Seal the namespace's new data with a new data key",
)
async def rotate_data_key(
    ns: str, platform: PlatformDep, principal: PrincipalDep
) -> DataKeyRotationRead:
    """Data sealed before stays readable with the old key."""
    key_id = await platform.vault_admin.rotate_data_key(principal=principal, namespace=ns)
    return DataKeyRotationRead(key_id=key_id)


@router.get(
    "/api/v1/namespaces/{ns}/vault/keys",
    responses=problem_responses(404, 503),
    summary="The namespace's public keys (JWK set)",
)
async def public_keys(ns: str, platform: PlatformDep, principal: PrincipalDep) -> PublicKeySet:
    """Active and retired public keys; private halves never leave the vault."""
    pairs = await platform.vault_admin.key_pairs(principal=principal, namespace=ns)
    return PublicKeySet(
        keys=[pair.public_jwk for pair in sorted(pairs, key=lambda p: not p.active)]
    )


@router.post(
    "/api/v1/namespaces/{ns}/vault/keys/rotate",
    status_code=201,
    responses=problem_responses(404, 503),
    summary="Create the namespace's next signing key (ES256)",
)
async def rotate_signing_key(
    ns: str, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, object]:
    """The new public key; tokens are signed with it from now on."""
    pair = await platform.vault_admin.rotate_signing_key(principal=principal, namespace=ns)
    return dict(pair.public_jwk)

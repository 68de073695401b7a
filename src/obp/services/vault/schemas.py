"""Vault response bodies: status, rotations and public keys (never private material)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class VaultStatusRead(BaseModel):
    """Whether the vault is sealed, why, and which root key version is current."""

    sealed: bool
    reason: str | None
    keystore: str
    root_version: str | None


class RootRotationRead(BaseModel):
    """The outcome of a root key rotation."""

    root_version: str
    rewrapped: int
    destroyed: list[str]


class DataKeyRotationRead(BaseModel):
    """The id of the namespace's new data key."""

    key_id: str


class PublicKeySet(BaseModel):
    """A JWK set of the namespace's public keys, active first."""

    keys: list[dict[str, Any]]

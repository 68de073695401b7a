"""Vault administration for callers: status, rotations and public keys, each authorized."""

from __future__ import annotations

from obp.kernel.auth import Access, Principal
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.services.namespaces import NamespaceService
from obp.services.vault.model import KeyPair
from obp.services.vault.service import RootRotation, VaultService, VaultStatus


class VaultAdmin:
    """What operators and tenants may ask of the vault over the API."""

    def __init__(
        self, *, vault: VaultService, namespaces: NamespaceService, access: Access
    ) -> None:
        self._vault = vault
        self._namespaces = namespaces
        self._access = access

    async def status(self, *, principal: Principal) -> VaultStatus:
        """Sealed or not, and why (platform operators)."""
        await self._access.require(
            principal, namespace=GLOBAL_NAMESPACE, action="vault.status", resource="vault:root"
        )
        return self._vault.status

    async def rotate_root(self, *, principal: Principal) -> RootRotation:
        """Rotate the root key (platform operators)."""
        await self._access.require(
            principal, namespace=GLOBAL_NAMESPACE, action="vault.rotate", resource="vault:root"
        )
        return await self._vault.rotate_root()

    async def rotate_data_key(self, *, principal: Principal, namespace: str) -> str:
        """Seal the namespace's new data with a new data key."""
        await self._authorize(principal, namespace, "vault.rotate", "vault:data-key")
        await self._namespaces.lookup(name=namespace)
        return await self._vault.rotate_data_key(namespace=namespace)

    async def key_pairs(self, *, principal: Principal, namespace: str) -> list[KeyPair]:
        """The namespace's key pairs (callers show only the public halves)."""
        await self._authorize(principal, namespace, "vault.keys.list", "vault:keys")
        await self._namespaces.lookup(name=namespace)
        return await self._vault.key_pairs(namespace=namespace)

    async def rotate_signing_key(self, *, principal: Principal, namespace: str) -> KeyPair:
        """Sign the namespace's tokens with a new key from now on."""
        await self._authorize(principal, namespace, "vault.rotate", "vault:signing-key")
        await self._namespaces.lookup(name=namespace)
        return await self._vault.rotate_signing_key(namespace=namespace)

    async def _authorize(
        self, principal: Principal, namespace: str, action: str, resource: str
    ) -> None:
        await self._access.require(principal, namespace=namespace, action=action, resource=resource)

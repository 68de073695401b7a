"""The vault: envelope encryption and key pairs per namespace. Other contexts import from here."""

from obp.services.vault.admin import VaultAdmin
from obp.services.vault.model import KeyPair
from obp.services.vault.service import (
    EVENT_SERVICE,
    RootRotation,
    SigningKey,
    VaultService,
    VaultStatus,
)

__all__ = [
    "EVENT_SERVICE",
    "KeyPair",
    "RootRotation",
    "SigningKey",
    "VaultAdmin",
    "VaultService",
    "VaultStatus",
]

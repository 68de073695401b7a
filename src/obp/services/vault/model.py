"""Envelope encryption, without I/O: the sealed format and the associated data that binds it."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from obp.kernel.errors import InvalidInput, TamperedError

# b"OBP" + format version 1, then the data key id (16 bytes), the nonce and ciphertext||tag.
MAGIC = b"OBP\x01"
_KEY_ID_BYTES = 16
_NONCE_BYTES = 12
_HEADER = len(MAGIC) + _KEY_ID_BYTES
DATA_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class DataKey:
    """A namespace's AES-256-GCM data key, as stored: wrapped by a root key version."""

    namespace: str
    key_id: str
    active: bool
    wrapped: bytes
    root_version: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A namespace's asymmetric key (ES256); the private half is stored sealed."""

    namespace: str
    kid: str
    algorithm: str
    active: bool
    public_jwk: dict[str, Any]
    private_sealed: bytes
    created_at: datetime
    retired_at: datetime | None


def new_data_key() -> tuple[str, bytes]:
    """A fresh key id and 256 random bits."""
    return str(uuid.uuid4()), AESGCM.generate_key(bit_length=256)


def wrap_aad(namespace: str, key_id: str) -> bytes:
    """What a wrapped data key is bound to: moved to another namespace or id, it won't unwrap."""
    return b"obp-data-key\x00" + namespace.encode() + b"\x00" + key_id.encode()


def seal(cipher: AESGCM, *, namespace: str, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt `plaintext` for `namespace` under one of its data keys."""
    nonce = os.urandom(_NONCE_BYTES)
    key_id_bytes = uuid.UUID(key_id).bytes
    ciphertext = cipher.encrypt(nonce, plaintext, _seal_aad(namespace, key_id_bytes, aad))
    return MAGIC + key_id_bytes + nonce + ciphertext


def key_id_of(sealed: bytes) -> str:
    """The id of the data key that sealed `sealed`, or `InvalidInput` if it is not sealed data."""
    if len(sealed) < _HEADER + _NONCE_BYTES + 16 or not sealed.startswith(MAGIC):
        raise InvalidInput.field(("sealed",), "is not data sealed by the OBP vault")
    return str(uuid.UUID(bytes=sealed[len(MAGIC) : _HEADER]))


def unseal(cipher: AESGCM, *, namespace: str, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate; `TamperedError` if the data, namespace or aad differ."""
    key_id_bytes = sealed[len(MAGIC) : _HEADER]
    nonce = sealed[_HEADER : _HEADER + _NONCE_BYTES]
    try:
        return cipher.decrypt(
            nonce, sealed[_HEADER + _NONCE_BYTES :], _seal_aad(namespace, key_id_bytes, aad)
        )
    except InvalidTag as exc:
        raise TamperedError(
            "sealed data failed authentication: it was altered, or belongs to another "
            "namespace or context"
        ) from exc


def _seal_aad(namespace: str, key_id: bytes, aad: bytes) -> bytes:
    return b"obp-seal\x00" + namespace.encode() + b"\x00" + key_id + b"\x00" + aad

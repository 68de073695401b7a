"""Opaque credentials: API keys and refresh tokens, shown once and stored only as a digest.

Format:
- API key: `obp_<key id>_<secret>`; the key id is 16 lowercase hex characters (the row to
  look up), the secret 32 random bytes in unpadded base64url (43 characters). The prefix lets
  secret scanners recognise a leaked key.
- Refresh token: `obprt_<secret>`, the secret as above.

Why SHA-256 and not argon2: these secrets are 256 random bits made by `secrets`, not chosen
by people. A slow hash protects low-entropy passwords against guessing; nothing can guess a
256-bit random value, so a single SHA-256 is as safe here, and a slow hash would only let
anyone burn the server's CPU by presenting made-up keys on every request. A stolen digest
does not give the secret back. Looking a row up by digest is fine for the same reason: the
caller cannot steer the digest of a value it does not know.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

API_KEY_PREFIX = "obp"
REFRESH_TOKEN_PREFIX = "obprt"  # noqa: S105 (a format prefix, not a secret)
SECRET_BYTES = 32
KEY_ID_BYTES = 8

_RANDOM = r"[A-Za-z0-9_-]{43}"  # 32 bytes, unpadded base64url
_API_KEY_RE = re.compile(rf"{API_KEY_PREFIX}_(?P<id>[0-9a-f]{{{KEY_ID_BYTES * 2}}})_{_RANDOM}")
_REFRESH_TOKEN_RE = re.compile(rf"{REFRESH_TOKEN_PREFIX}_{_RANDOM}")


def _random_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def digest(secret: str) -> str:
    """SHA-256 of the whole credential, hex: what is stored (see the module docstring)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A new API key: (key id, the full key to show once, its digest to store)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    key = f"{API_KEY_PREFIX}_{key_id}_{_random_secret()}"
    return key_id, key, digest(key)


def parse_api_key(secret: str) -> tuple[str, str] | None:
    """(key id, the key as given) for a well-formed API key, else None.

    The key id says which stored digest to compare `digest(key)` with.
    """
    match = _API_KEY_RE.fullmatch(secret)
    if match is None:
        return None
    return match.group("id"), secret


def new_refresh_token() -> tuple[str, str]:
    """A new refresh token: (the token to hand out once, its digest to store)."""
    token = f"{REFRESH_TOKEN_PREFIX}_{_random_secret()}"
    return token, digest(token)


def is_refresh_token(token: str) -> bool:
    """Whether `token` has the shape of a refresh token (worth looking up at all)."""
    return _REFRESH_TOKEN_RE.fullmatch(token) is not None


def constant_time_equals(a: str, b: str) -> bool:
    """`a == b` in time that does not depend on where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def matches(secret: str, stored_digest: str) -> bool:
    """Whether `secret` is the credential whose digest is `stored_digest` (constant time)."""
    return constant_time_equals(digest(secret), stored_digest)

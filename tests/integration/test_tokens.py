"""Access tokens signed by a real vault, checked by our verifier and by a second implementation.

The second implementation uses `cryptography` alone, from the published JWK set: it rebuilds
the P-256 public key from the JWK's x/y, recomputes the RFC 7638 thumbprint that serves as
`kid`, and checks the raw r||s ES256 signature over `header.payload`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey

from obp.adapters.keystore_file import FileKeyStore
from obp.kernel.errors import Unauthorized
from obp.kernel.events import Event
from obp.services.iam.tokens import (
    Claims,
    KeySource,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
    jwks,
)
from obp.services.vault import KeyPair, SigningKey, VaultService
from tests.conftest import migrated_database

BASE = "https://obp.example.com"


def issuer_for(namespace: str) -> str:
    """The issuer URL of a namespace, as the platform would build it."""
    return f"{BASE}/api/v1/namespaces/{namespace}"


SETTINGS = TokenSettings(issuer_for=issuer_for)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def vault(sqlite_url: str, tmp_path: Path) -> AsyncIterator[VaultService]:
    """A started vault on a migrated SQLite database with a file key store."""
    async with migrated_database(sqlite_url) as database:
        started = VaultService(
            unit_of_work=database.unit_of_work, keystore=FileKeyStore(tmp_path / "master.key")
        )
        await started.start()
        try:
            yield started
        finally:
            await started.close()


@pytest.fixture
def clock() -> Clock:
    """The time the issuer and the verifier see."""
    return Clock()


@pytest.fixture
def issuer(vault: VaultService, clock: Clock) -> TokenIssuer:
    """Issues tokens with the vault's keys."""
    return TokenIssuer(vault, SETTINGS, clock=clock)


@pytest.fixture
def verifier(vault: VaultService, clock: Clock) -> TokenVerifier:
    """Verifies tokens with the vault's public keys."""
    return TokenVerifier(vault, SETTINGS, clock=clock)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(_b64decode(header)), json.loads(_b64decode(payload))


def _with_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = {**json.loads(_b64decode(payload)), **changes}
    return f"{header}.{_b64encode(json.dumps(claims).encode())}.{signature}"


def independent_verify(token: str, key_set: dict[str, Any]) -> dict[str, Any]:
    """Verify an ES256 JWT from a JWK set with `cryptography` only; its claims."""
    header_part, payload_part, signature_part = token.split(".")
    header = json.loads(_b64decode(header_part))
    assert header["alg"] == "ES256"
    jwk = next(key for key in key_set["keys"] if key["kid"] == header["kid"])
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    assert "d" not in jwk  # the JWKS carries public halves only
    thumbprint = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    assert _b64encode(hashlib.sha256(thumbprint.encode()).digest()) == jwk["kid"]
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64decode(jwk["x"]), "big"),
        int.from_bytes(_b64decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = _b64decode(signature_part)
    assert len(raw) == 64  # JWS ES256 is r||s, not DER
    signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    public_key.verify(
        signature, f"{header_part}.{payload_part}".encode(), ec.ECDSA(hashes.SHA256())
    )
    claims: dict[str, Any] = json.loads(_b64decode(payload_part))
    return claims


async def _jwks(vault: VaultService, namespace: str, now: datetime) -> dict[str, Any]:
    pairs = await vault.key_pairs(namespace=namespace)
    return jwks(pairs, now=now, max_token_lifetime=SETTINGS.key_retention)


async def test_a_token_carries_the_claims_and_verifies_twice(
    vault: VaultService, issuer: TokenIssuer, verifier: TokenVerifier, clock: Clock
) -> None:
    issued = await issuer.issue(namespace="acme", identity_id="id-123", name="alice")

    claims = await verifier.verify(issued.token)
    independent = independent_verify(issued.token, await _jwks(vault, "acme", clock.now))

    assert claims == Claims(
        namespace="acme",
        identity_id="id-123",
        name="alice",
        jti=issued.jti,
        issued_at=clock.now,
        expires_at=clock.now + timedelta(seconds=600),
    )
    assert issued.expires_at == clock.now + timedelta(minutes=10)
    assert independent == {
        "iss": f"{BASE}/api/v1/namespaces/acme",
        "sub": "id-123",
        "ns": "acme",
        "name": "alice",
        "iat": int(clock.now.timestamp()),
        "exp": int(clock.now.timestamp()) + 600,
        "jti": issued.jti,
    }
    assert len(issued.jti) == 32
    assert (await issuer.issue(namespace="acme", identity_id="id-123", name="a")).jti != issued.jti


async def test_the_header_names_the_active_key(vault: VaultService, issuer: TokenIssuer) -> None:
    issued = await issuer.issue(namespace="acme", identity_id="id-1", name="alice")
    header, _ = _parts(issued.token)

    active = [pair for pair in await vault.key_pairs(namespace="acme") if pair.active]
    assert [pair.kid for pair in active] == [header["kid"]] == [issued.kid]
    assert header["alg"] == "ES256"
    assert header["typ"] == "JWT"


async def test_extra_claims_come_back_and_cannot_override_standard_ones(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    issued = await issuer.issue(
        namespace="acme", identity_id="id-1", name="alice", extra={"sid": "family-7"}
    )

    assert (await verifier.verify(issued.token)).extra == {"sid": "family-7"}
    with pytest.raises(ValueError, match="ns, sub"):
        await issuer.issue(
            namespace="acme", identity_id="id-1", name="a", extra={"sub": "x", "ns": "y"}
        )


async def test_an_expired_token_is_refused(
    vault: VaultService, verifier: TokenVerifier, clock: Clock
) -> None:
    past = Clock()
    past.now = clock.now - timedelta(minutes=11)
    issued = await TokenIssuer(vault, SETTINGS, clock=past).issue(
        namespace="acme", identity_id="id-1", name="alice"
    )

    with pytest.raises(Unauthorized, match="expired") as caught:
        await verifier.verify(issued.token)
    assert issued.token not in caught.value.detail


async def test_a_token_just_past_expiry_passes_within_the_leeway(
    vault: VaultService, verifier: TokenVerifier, clock: Clock
) -> None:
    past = Clock()
    past.now = clock.now - timedelta(seconds=600 + 10)  # expired 10 s ago; leeway is 30 s
    issued = await TokenIssuer(vault, SETTINGS, clock=past).issue(
        namespace="acme", identity_id="id-1", name="alice"
    )

    assert (await verifier.verify(issued.token)).identity_id == "id-1"


async def test_a_tampered_payload_is_refused(
    vault: VaultService, issuer: TokenIssuer, verifier: TokenVerifier, clock: Clock
) -> None:
    issued = await issuer.issue(namespace="acme", identity_id="id-1", name="alice")
    forged = _with_payload(issued.token, sub="id-admin", name="admin")

    with pytest.raises(Unauthorized, match="signature is not valid"):
        await verifier.verify(forged)
    with pytest.raises(InvalidSignature):
        independent_verify(forged, await _jwks(vault, "acme", clock.now))


async def test_a_token_of_one_namespace_does_not_pass_for_another(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    ours = await issuer.issue(namespace="acme", identity_id="id-1", name="alice")
    theirs = await issuer.issue(namespace="globex", identity_id="id-2", name="bob")

    # Only the ns claim changed: globex has no key with acme's kid.
    with pytest.raises(Unauthorized, match="key its namespace does not have"):
        await verifier.verify(_with_payload(ours.token, ns="globex"))
    # ns and iss changed, and the header of a real globex token names globex's key: the
    # signature (made by acme's key over other bytes) gives it away.
    _, payload, signature = _with_payload(ours.token, ns="globex", iss=issuer_for("globex")).split(
        "."
    )
    their_header = theirs.token.split(".")[0]
    with pytest.raises(Unauthorized, match="signature is not valid"):
        await verifier.verify(f"{their_header}.{payload}.{signature}")
    assert (await verifier.verify(theirs.token)).namespace == "globex"


async def test_a_token_from_another_issuer_is_refused(
    vault: VaultService, verifier: TokenVerifier, clock: Clock
) -> None:
    elsewhere = TokenSettings(issuer_for=lambda ns: f"https://evil.example/{ns}")
    issued = await TokenIssuer(vault, elsewhere, clock=clock).issue(
        namespace="acme", identity_id="id-1", name="alice"
    )

    with pytest.raises(Unauthorized, match="'iss' is not this namespace's issuer"):
        await verifier.verify(issued.token)


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "c2ln") -> str:
    """A compact JWS from parts, with whatever signature the test wants."""
    return (
        f"{_b64encode(json.dumps(header).encode())}."
        f"{_b64encode(json.dumps(claims).encode())}.{signature}"
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("not a token", "malformed"),
        ("a.b.c", "malformed"),
        ("a.b", "malformed"),
        ("é.é.é", "malformed"),
        ("x" * 10_000, "malformed"),
        (f"{_b64encode(b'[1]')}.{_b64encode(b'{}')}.c2ln", "malformed"),
        (_unsigned({"alg": "none"}, {"ns": "acme"}, ""), "not signed with ES256"),
        (_unsigned({"alg": "HS256", "kid": "k"}, {"ns": "acme"}), "not signed with ES256"),
        (_unsigned({"alg": "ES256"}, {"ns": "acme"}), "names no key"),
        (_unsigned({"alg": "ES256", "kid": "k"}, {"ns": "../x"}), "no valid namespace"),
        (_unsigned({"alg": "ES256", "kid": "k"}, {"sub": "x"}), "no valid namespace"),
        (_unsigned({"alg": "ES256", "kid": "k"}, {"ns": "acme"}), "namespace does not have"),
    ],
)
async def test_malformed_tokens_are_refused_with_a_reason(
    verifier: TokenVerifier, token: str, reason: str
) -> None:
    with pytest.raises(Unauthorized, match=reason) as caught:
        await verifier.verify(token)
    assert not token or token not in caught.value.detail


async def test_a_token_signed_by_the_namespace_key_but_lacking_a_claim_is_refused(
    vault: VaultService, verifier: TokenVerifier, clock: Clock
) -> None:
    signing = await vault.signing_key(namespace="acme")
    now = int(clock.now.timestamp())
    claims = {"iss": issuer_for("acme"), "sub": "x", "ns": "acme", "name": "n", "iat": now}
    token = jwt.encode(
        {"alg": "ES256", "kid": signing.kid},
        {**claims, "exp": now + 60},  # no jti
        ECKey.import_key(signing.private_pem),
    )

    with pytest.raises(Unauthorized, match="lacks the claim"):
        await verifier.verify(token)


async def test_rotation_keeps_old_tokens_valid_and_the_old_key_listed_until_expiry(
    vault: VaultService, issuer: TokenIssuer, verifier: TokenVerifier, clock: Clock
) -> None:
    old = await issuer.issue(namespace="acme", identity_id="id-1", name="alice")
    await verifier.verify(old.token)  # the verifier now caches the old key set

    await vault.rotate_signing_key(namespace="acme")
    rotated_at = clock.now
    new = await issuer.issue(namespace="acme", identity_id="id-1", name="alice")

    assert new.kid != old.kid
    # The unknown kid makes the verifier refetch at once, not after its cache TTL.
    assert (await verifier.verify(new.token)).jti == new.jti
    assert (await verifier.verify(old.token)).jti == old.jti
    key_set = await _jwks(vault, "acme", clock.now)
    assert [key["kid"] for key in key_set["keys"]] == [new.kid, old.kid]
    assert independent_verify(old.token, key_set)["jti"] == old.jti
    assert independent_verify(new.token, key_set)["jti"] == new.jti

    # Just before the last token the old key signed can have expired, it is still listed.
    clock.now = rotated_at + SETTINGS.key_retention - timedelta(seconds=1)
    assert len((await _jwks(vault, "acme", clock.now))["keys"]) == 2

    # Once no token it signed can still be valid, it is gone from the JWKS and the verifier.
    pairs = await vault.key_pairs(namespace="acme")
    retired_at = next(pair.retired_at for pair in pairs if pair.kid == old.kid)
    assert retired_at is not None
    clock.now = retired_at + SETTINGS.key_retention + timedelta(seconds=1)
    assert [key["kid"] for key in (await _jwks(vault, "acme", clock.now))["keys"]] == [new.kid]
    with pytest.raises(Unauthorized, match="retired"):
        await verifier.verify(old.token)


async def test_a_rotation_seen_through_the_event_needs_no_unknown_kid(
    vault: VaultService, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    await verifier.verify((await issuer.issue(namespace="acme", identity_id="i", name="a")).token)
    await vault.rotate_signing_key(namespace="acme")
    await verifier.forget(Event(namespace="acme", service="vault", name="signing_key_rotated"))

    new = await issuer.issue(namespace="acme", identity_id="i", name="a")
    assert (await verifier.verify(new.token)).namespace == "acme"


class CountingVault:
    """A key source that counts `key_pairs` calls and answers them slowly."""

    def __init__(self, vault: VaultService) -> None:
        self.vault = vault
        self.fetches = 0

    async def signing_key(
        self, *, namespace: str, not_before: datetime | None = None
    ) -> SigningKey:
        return await self.vault.signing_key(namespace=namespace, not_before=not_before)

    async def key_pairs(self, *, namespace: str) -> list[KeyPair]:
        self.fetches += 1
        await asyncio.sleep(0.05)
        return await self.vault.key_pairs(namespace=namespace)


async def test_public_keys_are_fetched_once_for_concurrent_and_later_requests(
    vault: VaultService, issuer: TokenIssuer
) -> None:
    counting = CountingVault(vault)
    source: KeySource = counting
    verifier = TokenVerifier(source, SETTINGS)
    token = (await issuer.issue(namespace="acme", identity_id="i", name="a")).token

    results = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    await verifier.verify(token)

    assert {claims.identity_id for claims in results} == {"i"}
    assert counting.fetches == 1


async def test_cached_public_keys_expire(vault: VaultService, issuer: TokenIssuer) -> None:
    counting = CountingVault(vault)
    ticks = [0.0]
    verifier = TokenVerifier(counting, SETTINGS, monotonic=lambda: ticks[0])
    token = (await issuer.issue(namespace="acme", identity_id="i", name="a")).token

    await verifier.verify(token)
    ticks[0] += SETTINGS.key_cache_seconds - 1
    await verifier.verify(token)
    assert counting.fetches == 1
    ticks[0] += 1
    await verifier.verify(token)
    assert counting.fetches == 2


def test_jwks_lists_active_and_recently_retired_keys_only() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    lifetime = timedelta(minutes=11)

    def pair(kid: str, *, active: bool, retired_ago: timedelta | None) -> KeyPair:
        retired = None if retired_ago is None else now - retired_ago
        return KeyPair("acme", kid, "ES256", active, {"kty": "EC", "kid": kid}, b"", now, retired)

    pairs = [
        pair("new", active=True, retired_ago=None),
        pair("recent", active=False, retired_ago=timedelta(minutes=10)),
        pair("old", active=False, retired_ago=timedelta(minutes=11)),
        pair("odd", active=False, retired_ago=None),
    ]

    key_set = jwks(pairs, now=now, max_token_lifetime=lifetime)

    assert [key["kid"] for key in key_set["keys"]] == ["new", "recent"]
    assert all(key["alg"] == "ES256" and key["use"] == "sig" for key in key_set["keys"])


def test_settings_derive_the_key_retention() -> None:
    settings = TokenSettings(issuer_for=issuer_for, lifetime_seconds=300)

    assert settings.lifetime == timedelta(minutes=5)
    assert settings.key_retention == timedelta(seconds=300 + 30 + 60)
    with pytest.raises(ValueError, match="lifetime_seconds"):
        TokenSettings(issuer_for=issuer_for, lifetime_seconds=0)

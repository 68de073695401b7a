"""Access tokens verified by an independent JWT library, from the published JWKS alone.

Another service holds no secret of OBP's: it reads the namespace's discovery document, fetches
the JWK set it names, and checks signature, algorithm, key id, issuer, lifetime and claims with
PyJWT (not the joserfc the server signs with). A signing-key rotation gives new tokens a new
`kid`, while the old public key stays published so the tokens it signed keep verifying.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from obp.client import Client
from tests.process import ServerProcess

PASSWORD = "independent passphrase 0001"
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class Login:
    namespace: str
    identity: str
    name: str


@pytest.fixture
def login(server: ServerProcess) -> Login:
    """A fresh namespace with an identity that has a password (no grants needed to log in)."""
    namespace = f"jwt-{secrets.token_hex(4)}"
    name = "verifier-test"
    with server.client() as admin:
        admin.request("POST", "/api/v1/namespaces", json={"name": namespace})
        base = f"/api/v1/namespaces/{namespace}/iam/identities"
        identity = admin.request("POST", base, json={"name": name}).json()["id"]
        admin.request("PUT", f"{base}/{identity}/password", json={"password": PASSWORD})
    return Login(namespace=namespace, identity=identity, name=name)


def _access_token(server: ServerProcess, login: Login) -> tuple[str, int]:
    """A password login's access token and its `expires_in`."""
    answer = httpx.post(
        f"{server.url}/api/v1/namespaces/{login.namespace}/iam/token",
        data={"grant_type": "password", "username": login.name, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    return str(body["access_token"]), int(body["expires_in"])


def _discovery(server: ServerProcess, namespace: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{server.url}/api/v1/namespaces/{namespace}/.well-known/openid-configuration"
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _jwks(discovery: dict[str, Any]) -> dict[str, Any]:
    """The JWK set, fetched from where the discovery document says it is."""
    answer = httpx.get(discovery["jwks_uri"])
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _verify(token: str, jwks: dict[str, Any], *, issuer: str) -> dict[str, Any]:
    """What any service would do: pick the key by `kid`, check ES256, signature and claims."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    key_set = jwt.PyJWKSet.from_dict(jwks)
    key = key_set[header["kid"]]  # KeyError: the JWKS does not have the token's key
    assert key.algorithm_name == "ES256"
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["ES256"],
        issuer=issuer,
        leeway=LEEWAY_SECONDS,
        options={"require": ["iss", "sub", "exp", "iat", "jti"], "verify_aud": False},
    )
    return claims


def test_an_access_token_verifies_with_pyjwt_and_the_published_jwks_alone(
    server: ServerProcess, login: Login
) -> None:
    before = int(time.time())
    token, expires_in = _access_token(server, login)
    discovery = _discovery(server, login.namespace)
    issuer = discovery["issuer"]
    assert issuer.endswith(f"/api/v1/namespaces/{login.namespace}")
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    jwks = _jwks(discovery)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    published = {key["kid"]: key for key in jwks["keys"]}
    assert header["kid"] in published
    for key in jwks["keys"]:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        assert "d" not in key, "the JWKS must never carry a private key"

    claims = _verify(token, jwks, issuer=issuer)
    assert claims["iss"] == issuer
    assert claims["ns"] == login.namespace
    assert claims["sub"] == login.identity
    assert claims["name"] == login.name
    assert claims["jti"]
    assert before - LEEWAY_SECONDS <= claims["iat"] <= int(time.time()) + LEEWAY_SECONDS
    assert claims["exp"] - claims["iat"] == expires_in
    assert 300 <= expires_in <= 900, "access tokens live 5-15 minutes"


def test_a_tampered_or_foreign_token_does_not_verify_with_pyjwt(
    server: ServerProcess, login: Login
) -> None:
    token, _ = _access_token(server, login)
    discovery = _discovery(server, login.namespace)
    jwks = _jwks(discovery)
    header, claims, signature = token.split(".")
    # Another signature (a different but well-formed one): refused.
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(f"{header}.{claims}.{flipped}", jwks, issuer=discovery["issuer"])
    # Another namespace's issuer: refused.
    with pytest.raises(jwt.InvalidIssuerError):
        _verify(token, jwks, issuer=discovery["issuer"].replace(login.namespace, "other"))
    # Another namespace's keys do not know this token's key.
    with server.client() as admin:
        other = f"jwt-{secrets.token_hex(4)}"
        admin.request("POST", "/api/v1/namespaces", json={"name": other})
        base = f"/api/v1/namespaces/{other}/iam/identities"
        identity = admin.request("POST", base, json={"name": "someone"}).json()["id"]
        admin.request("PUT", f"{base}/{identity}/password", json={"password": PASSWORD})
    _access_token(server, Login(namespace=other, identity=identity, name="someone"))
    with pytest.raises(KeyError):
        _verify(token, _jwks(_discovery(server, other)), issuer=discovery["issuer"])


def test_after_a_key_rotation_old_and_new_tokens_both_verify_against_the_jwks(
    server: ServerProcess, client: Client, login: Login
) -> None:
    old, _ = _access_token(server, login)
    old_kid = jwt.get_unverified_header(old)["kid"]

    rotated = client.request("POST", f"/api/v1/namespaces/{login.namespace}/vault/keys/rotate")
    assert rotated.status_code == 201, rotated.text
    assert "d" not in rotated.json()

    new, _ = _access_token(server, login)
    new_kid = jwt.get_unverified_header(new)["kid"]
    assert new_kid != old_kid, "a token signed after the rotation names the new key"

    discovery = _discovery(server, login.namespace)
    jwks = _jwks(discovery)
    assert {old_kid, new_kid} <= {key["kid"] for key in jwks["keys"]}
    for token, kid in ((old, old_kid), (new, new_kid)):
        claims = _verify(token, jwks, issuer=discovery["issuer"])
        assert claims["sub"] == login.identity
        assert jwt.get_unverified_header(token)["kid"] == kid
    # The server itself still takes both until they expire.
    for token in (old, new):
        answer = httpx.get(
            f"{server.url}/api/v1/namespaces/{login.namespace}/iam/identities",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 403, f"authenticated, just not allowed: {answer.text}"

"""The vault end to end: nothing in clear at rest, tampering detected, PKCS#11, sealed state.

Every test runs a real `obp serve` and then looks behind its back: raw database bytes and
rows, the master key file, the server's log.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from obp.client import Client, Tokens
from tests.e2e.vault_fixtures import (
    ENGINES,
    Deployment,
    bearer,
    clean_token_fixture,  # noqa: F401  (the `clean_token` fixture)
    database_contents,
    deployed,
    deployment_fixture,  # noqa: F401  (the `deployment` fixture)
    move_aside,
    pkcs11_env,
    sdk_fixture,  # noqa: F401  (the `sdk` fixture)
    unique,
    wait_for,
)
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import OBP, free_port
from tests.softhsm import SoftHsmToken

SEALED_DETAIL = "vault is sealed"


def _secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


def _encodings(text: str) -> list[bytes]:
    """`text` as it might be stored in clear: UTF-8, and base64 in every alphabet."""
    raw = text.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
    ]


def _assert_absent(haystacks: list[bytes], needles: list[bytes], where: str) -> None:
    for needle in needles:
        for haystack in haystacks:
            assert needle not in haystack, f"{needle[:40]!r} found in clear in {where}"


def _files_under(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()]


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


# --- nothing in clear at rest -------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_the_database_never_holds_a_secret_value_or_private_key_in_clear(
    engine: str, tmp_path: Path
) -> None:
    canary = "canary-" + secrets.token_hex(16)
    values = [canary, f"{canary}-v2", f"prefix {canary} suffix", canary * 3]
    with deployed(engine, tmp_path) as deployment, deployment.client() as sdk:
        assert sdk.tokens is not None
        logged_in = [sdk.tokens.access_token, sdk.tokens.refresh_token or ""]
        namespaces = [unique("rest"), unique("rest")]
        for ns in namespaces:
            sdk.namespaces.create(ns)
            for value in values:
                sdk.secrets.set(ns, "canary.secret", value)
            sdk.secrets.set(ns, "other", canary, description="not the value")
            created = sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/keys/rotate")
            assert created.status_code == 201
            assert "d" not in created.json()  # the public half only
            sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/data-key/rotate")
            sdk.secrets.set(ns, "canary.secret", f"{canary}-after-rotation")
        sdk.request("POST", "/api/v1/vault/root/rotate")
        assert sdk.secrets.get(namespaces[0], "canary.secret", version=1)["value"] == canary
        pairs = "SELECT namespace FROM vault_key_pairs"
        # One per namespace, and the global one that signs the admin's tokens.
        assert sorted(row[0] for row in deployment.query(pairs)) == sorted([*namespaces, "global"])
        sealed = deployment.query("SELECT value_sealed FROM secrets")
        assert len(sealed) == 2 * (len(values) + 2)
        assert all(bytes(row[0]).startswith(b"OBP\x01") for row in sealed)
        assert len({bytes(row[0]) for row in sealed}) == len(sealed)  # fresh nonce every time
        deployment.process.stop()

        stored = database_contents(deployment) + _files_under(deployment.data_dir)
        assert sum(len(chunk) for chunk in stored) > 0
        needles = [needle for value in values for needle in _encodings(value)]
        _assert_absent(stored, needles, f"the {engine} database")
        _assert_absent(stored, [b"PRIVATE KEY", b"BEGIN EC"], f"the {engine} database")
        # Nor the admin's password or tokens (refresh tokens are stored as digests).
        credentials = [token.encode() for token in logged_in] + _encodings(ADMIN_PASSWORD)
        _assert_absent(stored, credentials, f"the {engine} database")
        log = deployment.process.log_path.read_bytes()
        _assert_absent([log], [*needles, *credentials, b"PRIVATE KEY"], "the server log")


# --- tampering ------------------------------------------------------------------------------------


def _sealed_row(deployment: Deployment, ns: str, name: str) -> bytes:
    rows = deployment.query(
        "SELECT value_sealed FROM secrets WHERE namespace = ? AND name = ? AND version = 1",
        ns,
        name,
    )
    return bytes(rows[0][0])


def _store_sealed(deployment: Deployment, ns: str, name: str, sealed: bytes) -> None:
    deployment.execute(
        "UPDATE secrets SET value_sealed = ? WHERE namespace = ? AND name = ? AND version = 1",
        sealed,
        ns,
        name,
    )


def _assert_integrity_failure(sdk: Client, ns: str, name: str, value: str) -> None:
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens)) as raw:
        response = raw.get(_secret_path(ns, name))
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Integrity check failed"
    assert value not in response.text


def test_a_flipped_bit_in_a_sealed_value_is_detected(sdk: Client, deployment: Deployment) -> None:
    ns = unique("tamper")
    sdk.namespaces.create(ns)
    sdk.secrets.set(ns, "target", "tamper-original")
    sealed = _sealed_row(deployment, ns, "target")
    # Layout: b"OBP\x01", key id (16 bytes), nonce (12 bytes), ciphertext, tag (16 bytes).
    for index in (20, 32, len(sealed) - 17, len(sealed) - 1):  # nonce, text, text, tag
        changed = bytearray(sealed)
        changed[index] ^= 0x01
        _store_sealed(deployment, ns, "target", bytes(changed))
        _assert_integrity_failure(sdk, ns, "target", "tamper-original")
    # A changed key id names a key the namespace does not have.
    changed = bytearray(sealed)
    changed[10] ^= 0x01
    _store_sealed(deployment, ns, "target", bytes(changed))
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens)) as raw:
        response = raw.get(_secret_path(ns, "target"))
    _problem(response, 404)
    assert "tamper-original" not in response.text
    _store_sealed(deployment, ns, "target", sealed)
    assert sdk.secrets.get(ns, "target")["value"] == "tamper-original"


def test_a_sealed_value_moved_to_another_secret_or_namespace_does_not_unseal(
    sdk: Client, deployment: Deployment
) -> None:
    ns, other_ns = unique("tamper"), unique("tamper")
    sdk.namespaces.create(ns)
    sdk.namespaces.create(other_ns)
    sdk.secrets.set(ns, "admin-password", "moved-secret-value")
    sdk.secrets.set(ns, "public-note", "harmless")
    sdk.secrets.set(other_ns, "public-note", "harmless")
    stolen = _sealed_row(deployment, ns, "admin-password")

    # Same namespace, same data key, another name: the aad (the name) no longer matches.
    _store_sealed(deployment, ns, "public-note", stolen)
    _assert_integrity_failure(sdk, ns, "public-note", "moved-secret-value")

    # Another namespace: its data keys are not the one that sealed it.
    _store_sealed(deployment, other_ns, "public-note", stolen)
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens)) as raw:
        response = raw.get(_secret_path(other_ns, "public-note"))
    assert response.status_code in (404, 500), response.text
    assert "moved-secret-value" not in response.text
    assert sdk.secrets.get(ns, "admin-password")["value"] == "moved-secret-value"


def test_a_tampered_wrapped_data_key_is_detected_after_a_restart(
    sdk: Client, deployment: Deployment
) -> None:
    ns = unique("tamper")
    sdk.namespaces.create(ns)
    sdk.secrets.set(ns, "wrapped", "wrapped-key-secret")
    key_id, wrapped = deployment.query(
        "SELECT key_id, wrapped FROM vault_data_keys WHERE namespace = ?", ns
    )[0]
    changed = bytearray(bytes(wrapped))
    changed[-1] ^= 0x80
    deployment.execute(
        "UPDATE vault_data_keys SET wrapped = ? WHERE namespace = ? AND key_id = ?",
        bytes(changed),
        ns,
        key_id,
    )
    deployment.restart()  # the running server holds the unwrapped key in memory
    with deployment.client() as fresh:
        _assert_integrity_failure(fresh, ns, "wrapped", "wrapped-key-secret")
        deployment.execute(
            "UPDATE vault_data_keys SET wrapped = ? WHERE namespace = ? AND key_id = ?",
            bytes(wrapped),
            ns,
            key_id,
        )
        assert fresh.secrets.get(ns, "wrapped")["value"] == "wrapped-key-secret"


def test_a_deleted_namespaces_sealed_data_cannot_be_unsealed_even_when_put_back(
    sdk: Client, deployment: Deployment
) -> None:
    ns = unique("shred")
    sdk.namespaces.create(ns)
    sdk.secrets.set(ns, "kept-copy", "shredded-value")
    columns = "namespace, name, version, description, value_sealed, created_at, created_by"
    backup = deployment.query(f"SELECT {columns} FROM secrets WHERE namespace = ?", ns)  # noqa: S608
    assert len(backup) == 1

    sdk.namespaces.delete(ns)
    wait_for(
        lambda: (
            not deployment.query("SELECT key_id FROM vault_data_keys WHERE namespace = ?", ns)
            and not deployment.query("SELECT name FROM secrets WHERE namespace = ?", ns)
        ),
        what=f"the purge of namespace {ns}",
    )
    sdk.namespaces.create(ns)
    sdk.secrets.set(ns, "fresh", "new-data-key")  # the namespace gets a new data key
    # The old row comes back as a restore into the new namespace would bring it: dated now,
    # so the namespace's own incarnation filter does not hide it and only the keys decide.
    restored = list(backup[0])
    restored[5] = deployment.query(
        "SELECT created_at FROM secrets WHERE namespace = ? AND name = ?", ns, "fresh"
    )[0][0]
    deployment.execute(
        f"INSERT INTO secrets ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        *restored,
    )
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens)) as raw:
        response = raw.get(_secret_path(ns, "kept-copy"))
    problem = _problem(response, 404)
    assert "destroyed" in problem["detail"]
    assert "shredded-value" not in response.text


# --- PKCS#11 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_secrets_and_root_rotation_work_on_a_pkcs11_token(
    engine: str, tmp_path: Path, clean_token: SoftHsmToken
) -> None:
    with deployed(engine, tmp_path, env=pkcs11_env(clean_token)) as deployment:
        with deployment.client() as sdk:
            status = sdk.request("GET", "/api/v1/vault").json()
            assert status == {
                "sealed": False,
                "reason": None,
                "keystore": "pkcs11",
                "root_version": status["root_version"],
            }
            assert status["root_version"]
            assert sdk.ready()["checks"]["vault"]["backend"] == "pkcs11"
            ns = unique("hsm")
            sdk.namespaces.create(ns)
            sdk.secrets.set(ns, "hsm-secret", "sealed-under-hsm-1")
            sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/data-key/rotate")
            sdk.secrets.set(ns, "hsm-secret", "sealed-under-hsm-2")
            data_keys = "SELECT namespace FROM vault_data_keys"
            wrapped = [row[0] for row in deployment.query(data_keys)]
            # The namespace's two, and global's (it seals the key that signs the admin's tokens).
            assert sorted(wrapped) == sorted([ns, ns, "global"])
            rotation = sdk.request("POST", "/api/v1/vault/root/rotate").json()
            assert rotation["root_version"] != status["root_version"]
            assert rotation["rewrapped"] == len(wrapped)
            assert rotation["destroyed"] == [status["root_version"]]
            assert sdk.secrets.get(ns, "hsm-secret", version=1)["value"] == "sealed-under-hsm-1"
            assert sdk.secrets.get(ns, "hsm-secret")["value"] == "sealed-under-hsm-2"
            roots = {row[0] for row in deployment.query("SELECT root_version FROM vault_data_keys")}
            assert roots == {rotation["root_version"]}
        assert not (deployment.data_dir / "master.key").exists()

        deployment.restart()
        with deployment.client() as sdk:
            assert (
                sdk.request("GET", "/api/v1/vault").json()["root_version"]
                == (rotation["root_version"])
            )
            assert sdk.secrets.get(ns, "hsm-secret", version=1)["value"] == "sealed-under-hsm-1"
            assert sdk.secrets.get(ns, "hsm-secret")["value"] == "sealed-under-hsm-2"
        log = deployment.process.log_path.read_text()
        assert clean_token.pin not in log


# --- sealed state ---------------------------------------------------------------------------------
#
# Access tokens are signed with vault keys, so while the vault is sealed nobody can log in.
# Tokens issued before still verify (public keys are stored in clear): tests that act as the
# admin on a sealed vault log in while it is open.


def _log_in_anew(deployment: Deployment) -> httpx.Response:
    """The token endpoint's answer to the admin's password."""
    with httpx.Client(base_url=deployment.url, timeout=20) as raw:
        return raw.post(
            "/api/v1/namespaces/global/iam/token",
            data={"grant_type": "password", "username": ADMIN_LOGIN, "password": ADMIN_PASSWORD},
        )


def _assert_sealed(
    deployment: Deployment,
    tokens: Tokens | None,
    *,
    reason_has: list[str],
    hidden: tuple[str, ...] = (),
) -> None:
    """readyz 503 with the vault sealed and why; healthz still 200; logins 503 sealed.

    With `tokens` (issued while the vault was open) the vault status says sealed and why; it
    is 401 without a token. Nothing in `hidden` appears in any answer.
    """
    with httpx.Client(base_url=deployment.url, timeout=20) as raw:
        assert raw.get("/healthz").status_code == 200
        ready = raw.get("/readyz")
        anonymous = raw.get("/api/v1/vault")
        status = None if tokens is None else raw.get("/api/v1/vault", headers=bearer(tokens))
    login = _log_in_anew(deployment)
    assert ready.status_code == 503, ready.text
    check: dict[str, Any] = ready.json()["checks"]["vault"]
    assert check["status"] == "sealed"
    for fragment in reason_has:
        assert fragment in check["reason"]
    assert ready.json()["checks"]["database"]["status"] == "ok"
    _problem(anonymous, 401)
    assert SEALED_DETAIL in _problem(login, 503)["detail"]
    assert int(login.headers["retry-after"]) > 0
    answers = [ready, anonymous, login]
    if status is not None:
        assert status.status_code == 200, status.text
        vault = status.json()
        assert vault["sealed"] is True
        assert vault["root_version"] is None
        for fragment in reason_has:
            assert fragment in vault["reason"]
        answers.append(status)
    for text in hidden:
        for answer in answers:
            assert text not in answer.text


def _calls_needing_keys(raw: httpx.Client, ns: str, stored: str | None) -> list[httpx.Response]:
    """Every call that needs keys; `stored` names a secret stored before the vault was sealed."""
    responses = [
        raw.put(_secret_path(ns, "new-one"), json={"value": "while-sealed"}),
        raw.post(f"/api/v1/namespaces/{ns}/vault/data-key/rotate"),
        raw.post(f"/api/v1/namespaces/{ns}/vault/keys/rotate"),
        raw.post("/api/v1/vault/root/rotate"),
    ]
    if stored is not None:
        responses.append(raw.get(_secret_path(ns, stored)))
    return responses


def _assert_anonymous_refused(deployment: Deployment, ns: str, stored: str | None) -> None:
    """A sealed vault does not skip authentication: without a token every call is 401."""
    with httpx.Client(base_url=deployment.url, timeout=20) as raw:
        responses = [
            *_calls_needing_keys(raw, ns, stored),
            raw.post("/api/v1/namespaces", json={"name": unique("anon")}),
        ]
    for response in responses:
        _problem(response, 401)


def _assert_needs_keys_answers_503(
    deployment: Deployment, tokens: Tokens, ns: str, stored: str | None
) -> None:
    """Every call that needs keys: 503 problem+json saying the vault is sealed, Retry-After,
    for the admin (401 without a token).

    `stored` names a secret stored before the vault was sealed, if there is one to read.
    """
    with httpx.Client(base_url=deployment.url, timeout=20, headers=bearer(tokens)) as raw:
        responses = _calls_needing_keys(raw, ns, stored)
    for response in responses:
        problem = _problem(response, 503)
        assert SEALED_DETAIL in problem["detail"], problem
        assert int(response.headers["retry-after"]) > 0
    _assert_anonymous_refused(deployment, ns, stored)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wrong_pkcs11_pin_starts_sealed_and_the_right_one_unseals(
    engine: str, tmp_path: Path, clean_token: SoftHsmToken
) -> None:
    wrong_pin = "wrong-" + secrets.token_hex(4)
    with deployed(engine, tmp_path, env=pkcs11_env(clean_token)) as deployment:
        ns = unique("pin")
        with deployment.client() as sdk:
            sdk.namespaces.create(ns)
            sdk.secrets.set(ns, "kept", "survives-sealing")
        tokens = deployment.login()  # while the vault can still sign one
        deployment.respawn({"OBP_KEYSTORE_PIN": wrong_pin})
        pins = (wrong_pin, clean_token.pin)
        _assert_sealed(deployment, tokens, reason_has=["PIN", "incorrect"], hidden=pins)
        _assert_needs_keys_answers_503(deployment, tokens, ns, "kept")
        with deployment.client(tokens) as sdk:
            other = unique("pin")
            assert (
                sdk.request("POST", "/api/v1/namespaces", json={"name": other}).status_code == 201
            )
            assert sdk.namespaces.get(ns)["name"] == ns
            sdk.namespaces.delete(other)
        log = deployment.process.log_path.read_text()
        assert wrong_pin not in log
        assert clean_token.pin not in log
        assert "Traceback" not in log

        deployment.respawn()
        with deployment.client() as sdk:
            assert sdk.ready()["checks"]["vault"]["status"] == "ok"
            assert sdk.secrets.get(ns, "kept")["value"] == "survives-sealing"


def test_a_fresh_server_with_a_wrong_pin_starts_sealed(
    tmp_path: Path, clean_token: SoftHsmToken
) -> None:
    wrong_pin = "wrong-" + secrets.token_hex(4)
    env = pkcs11_env(clean_token, pin=wrong_pin)
    with deployed("sqlite", tmp_path, env=env) as deployment:
        # Sealed from its first start: nobody can log in, so nothing but 401 and 503.
        _assert_sealed(deployment, None, reason_has=["PIN", "incorrect"], hidden=(wrong_pin,))
        _assert_anonymous_refused(deployment, unique("pin"), None)
        # The admin it created meanwhile logs in once the PIN is right; sealed again, that
        # login still acts on whatever needs no keys.
        deployment.respawn({"OBP_KEYSTORE_PIN": clean_token.pin})
        tokens = deployment.login()
        deployment.respawn()
        _assert_sealed(deployment, tokens, reason_has=["PIN", "incorrect"], hidden=(wrong_pin,))
        with deployment.client(tokens) as sdk:
            ns = unique("pin")
            assert sdk.request("POST", "/api/v1/namespaces", json={"name": ns}).status_code == 201
        _assert_needs_keys_answers_503(deployment, tokens, ns, None)
        assert wrong_pin not in deployment.process.log_path.read_text()


def test_an_absent_hsm_library_starts_sealed(tmp_path: Path, clean_token: SoftHsmToken) -> None:
    env = {
        **pkcs11_env(clean_token),
        "OBP_KEYSTORE_URL": "pkcs11:///nonexistent/libhsm.so?token=obp-test",
    }
    with deployed("sqlite", tmp_path, env=env) as deployment:
        _assert_sealed(deployment, None, reason_has=["PKCS#11 library"])
        _assert_anonymous_refused(deployment, unique("nohsm"), None)
        # Log in through the real library, then start without it again.
        deployment.respawn({"OBP_KEYSTORE_URL": clean_token.url})
        tokens = deployment.login()
        deployment.respawn()
        _assert_sealed(deployment, tokens, reason_has=["PKCS#11 library"])
        with deployment.client(tokens) as sdk:
            ns = unique("nohsm")
            sdk.namespaces.create(ns)
        _assert_needs_keys_answers_503(deployment, tokens, ns, None)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_missing_master_key_file_seals_the_vault_until_it_is_put_back(
    engine: str, tmp_path: Path
) -> None:
    with deployed(engine, tmp_path) as deployment:
        master_key = deployment.data_dir / "master.key"
        ns = unique("mk")
        with deployment.client() as sdk:
            sdk.namespaces.create(ns)
            sdk.secrets.set(ns, "kept", "needs-the-master-key")
        tokens = deployment.login()  # while the vault can still sign one
        deployment.process.stop()
        assert master_key.stat().st_mode & 0o777 == 0o600
        aside = move_aside(master_key)

        deployment.process.start(timeout=30)
        _assert_sealed(deployment, tokens, reason_has=["master.key", "missing"])
        _assert_needs_keys_answers_503(deployment, tokens, ns, "kept")
        assert not master_key.exists(), "a vault with keys must never create a new master key"
        deployment.process.stop()

        os.replace(aside, master_key)
        deployment.process.start(timeout=30)
        with deployment.client() as sdk:
            assert sdk.ready()["checks"]["vault"]["status"] == "ok"
            assert sdk.secrets.get(ns, "kept")["value"] == "needs-the-master-key"


def test_a_master_key_file_removed_while_running_makes_readyz_report_sealed(
    tmp_path: Path,
) -> None:
    with deployed("sqlite", tmp_path) as deployment:
        master_key = deployment.data_dir / "master.key"
        with deployment.client() as sdk:
            ns = unique("mk")
            sdk.namespaces.create(ns)
            sdk.secrets.set(ns, "kept", "in-memory-keys")
            assert sdk.ready()["checks"]["vault"]["status"] == "ok"
        aside = move_aside(master_key)
        try:
            with httpx.Client(base_url=deployment.url, timeout=20) as raw:
                ready = raw.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["vault"]["status"] == "sealed"
            assert "master.key" in ready.json()["checks"]["vault"]["reason"]
        finally:
            os.replace(aside, master_key)


def test_serve_refuses_a_master_key_file_readable_by_others_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "obp-data"
    with deployed("sqlite", tmp_path) as deployment, deployment.client() as sdk:
        sdk.namespaces.create(unique("perm"))
    master_key = data_dir / "master.key"
    master_key.chmod(0o644)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OBP_") or key.startswith("OBP_TEST_")
    }
    env["OBP_DATA_DIR"] = str(data_dir)
    env.update({"OBP_ADMIN_LOGIN": ADMIN_LOGIN, "OBP_ADMIN_PASSWORD": ADMIN_PASSWORD})
    process = subprocess.Popen(
        [str(OBP), "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    output = stdout + stderr
    assert process.returncode != 0
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "chmod 600" in line]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: ")
    assert str(master_key) in errors[0]
    assert "OBP is listening" not in output

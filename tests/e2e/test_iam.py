"""IAM end to end: administration, wildcard grants, authz checks, passwords, keys, throttling."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from obp.client import Client, ObpApiError
from tests.process import ServerProcess


@dataclass
class Tenant:
    """A namespace with its built-in root policy id."""

    name: str
    root_policy: str


def _tenant(client: Client) -> Tenant:
    name = f"iam-{secrets.token_hex(4)}"
    client.namespaces.create(name)
    roots = [p for p in client.iam.iterate(name, "policies") if p["name"] == "root"]
    assert len(roots) == 1, "every namespace gets a built-in root policy"
    assert roots[0]["builtin"]
    return Tenant(name=name, root_policy=roots[0]["id"])


@pytest.fixture
def tenant(client: Client) -> Tenant:
    """A fresh namespace."""
    return _tenant(client)


def _identity(
    client: Client, tenant: Tenant, *, policies: list[str], password: str | None = None
) -> dict[str, object]:
    identity = client.iam.create(
        tenant.name, "identities", {"name": f"user-{secrets.token_hex(3)}", "policies": policies}
    )
    if password is not None:
        client.iam.set_password(tenant.name, str(identity["id"]), password)
    return identity


@pytest.fixture
def as_user(server: ServerProcess) -> Iterator[Client]:
    """A client for logging in as someone else than the admin."""
    with Client(server.url) as sdk:
        yield sdk


def test_policies_are_created_validated_changed_and_deleted(client: Client, tenant: Tenant) -> None:
    policy = client.iam.create(
        tenant.name, "policies", {"name": "readers", "resources": ["kv:a/*"], "actions": ["kv.get"]}
    )
    with pytest.raises(ObpApiError) as duplicate:
        client.iam.create(
            tenant.name, "policies", {"name": "readers", "resources": ["*"], "actions": ["*"]}
        )
    assert duplicate.value.status == 409
    with pytest.raises(ObpApiError) as invalid:
        client.iam.create(
            tenant.name,
            "policies",
            {"name": "bad", "resources": ["kv:x", "no-colon"], "actions": ["Kv.Get"]},
        )
    assert invalid.value.status == 422
    assert invalid.value.problem["errors"][0]["loc"] == ["resources", 1]
    changed = client.iam.update(tenant.name, "policies", policy["id"], {"actions": ["kv.*"]})
    assert changed["actions"] == ["kv.*"]
    assert changed["resources"] == ["kv:a/*"]
    client.iam.delete(tenant.name, "policies", policy["id"])
    with pytest.raises(ObpApiError) as gone:
        client.iam.get(tenant.name, "policies", policy["id"])
    assert gone.value.status == 404


def test_only_global_policies_can_be_namespace_independent(client: Client, tenant: Tenant) -> None:
    with pytest.raises(ObpApiError) as refused:
        client.iam.create(
            tenant.name,
            "policies",
            {"name": "every", "resources": ["*"], "actions": ["*"], "namespace_independent": True},
        )
    assert refused.value.status == 422
    assert refused.value.problem["errors"][0]["loc"] == ["namespace_independent"]


def test_built_in_root_policy_cannot_be_deleted_or_changed(client: Client, tenant: Tenant) -> None:
    for call in (
        lambda: client.iam.delete(tenant.name, "policies", tenant.root_policy),
        lambda: client.iam.update(
            tenant.name, "policies", tenant.root_policy, {"actions": ["x.y"]}
        ),
    ):
        with pytest.raises(ObpApiError) as refused:
            call()
        assert refused.value.status == 409
    assert client.iam.get(tenant.name, "policies", tenant.root_policy)["actions"] == ["*"]


def test_attaching_another_namespaces_policy_is_refused(client: Client, tenant: Tenant) -> None:
    other = _tenant(client)
    for kind, body in (
        ("identities", {"name": "eve", "policies": [other.root_policy]}),
        ("roles", {"name": "stolen", "policies": [other.root_policy]}),
    ):
        with pytest.raises(ObpApiError) as refused:
            client.iam.create(tenant.name, kind, body)
        assert refused.value.status == 422
        assert refused.value.problem["errors"][0]["loc"] == ["policies", 0]
        # Said as for an id that does not exist: other tenants' names are not revealed.
        assert other.name not in refused.value.problem["errors"][0]["msg"]
        assert "does not exist" in refused.value.problem["errors"][0]["msg"]
    assert [i["name"] for i in client.iam.iterate(tenant.name, "identities")] == []


def test_deleting_a_policy_detaches_it_everywhere(client: Client, tenant: Tenant) -> None:
    policy = client.iam.create(
        tenant.name, "policies", {"name": "p", "resources": ["*"], "actions": ["kv.get"]}
    )
    role = client.iam.create(tenant.name, "roles", {"name": "r", "policies": [policy["id"]]})
    identity = _identity(client, tenant, policies=[policy["id"]])
    client.iam.delete(tenant.name, "policies", policy["id"])
    assert client.iam.get(tenant.name, "roles", role["id"])["policies"] == []
    assert client.iam.get(tenant.name, "identities", str(identity["id"]))["policies"] == []


def test_wildcard_policy_grants_exactly_what_it_names(
    client: Client, tenant: Tenant, as_user: Client
) -> None:
    client.secrets.set(tenant.name, "app-token", "a")
    client.secrets.set(tenant.name, "db-password", "b")
    policy = client.iam.create(
        tenant.name,
        "policies",
        {"name": "app-readers", "resources": ["secret:app-*"], "actions": ["secret.get"]},
    )
    identity = _identity(client, tenant, policies=[policy["id"]], password="a long passphrase 1")
    as_user.login(str(identity["name"]), "a long passphrase 1", namespace=tenant.name)
    assert as_user.secrets.get(tenant.name, "app-token")["value"] == "a"
    with pytest.raises(ObpApiError) as denied_read:
        as_user.secrets.get(tenant.name, "db-password")
    with pytest.raises(ObpApiError) as denied_write:
        as_user.secrets.set(tenant.name, "app-new", "x")
    for denied, action, resource in (
        (denied_read, "secret.get", "secret:db-password"),
        (denied_write, "secret.set", "secret:app-new"),
    ):
        assert denied.value.status == 403
        assert action in denied.value.problem["detail"]
        assert resource in denied.value.problem["detail"]
    # Every refusal is in the namespace's audit trail (written in the background).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        trail = client.request("GET", f"/api/v1/namespaces/{tenant.name}/audit").json()["items"]
        if len(trail) >= 2:
            break
        time.sleep(0.05)
    assert {(r["action"], r["resource"], r["outcome"]) for r in trail} >= {
        ("secret.get", "secret:db-password", "denied"),
        ("secret.set", "secret:app-new", "denied"),
    }
    # Changed at runtime: the next request sees the new rights.
    client.iam.update(tenant.name, "policies", policy["id"], {"resources": ["secret:*"]})
    assert as_user.secrets.get(tenant.name, "db-password")["value"] == "b"


def test_authz_check_answers_for_the_caller_and_for_others_only_if_allowed(
    client: Client, tenant: Tenant, as_user: Client
) -> None:
    policy = client.iam.create(
        tenant.name, "policies", {"name": "k", "resources": ["kv:orders/*"], "actions": ["kv.get"]}
    )
    identity = _identity(client, tenant, policies=[policy["id"]], password="a long passphrase 2")
    as_user.login(str(identity["name"]), "a long passphrase 2", namespace=tenant.name)
    questions = {
        "checks": [
            {"action": "kv.get", "resource": "kv:orders/42"},
            {"action": "kv.set", "resource": "kv:orders/42"},
        ]
    }
    path = f"/api/v1/namespaces/{tenant.name}/iam/authz/check"
    own = as_user.request("POST", path, json=questions).json()["decisions"]
    assert [d["allowed"] for d in own] == [True, False]
    about = {**questions, "identity": identity["id"]}
    assert [d["allowed"] for d in client.request("POST", path, json=about).json()["decisions"]] == [
        True,
        False,
    ]
    with pytest.raises(ObpApiError) as refused:
        as_user.request("POST", path, json={**questions, "identity": "someone-else"})
    assert refused.value.status == 403
    assert "iam.authz.check" in refused.value.problem["detail"]


def test_password_rules_are_per_namespace(client: Client, tenant: Tenant) -> None:
    identity = _identity(client, tenant, policies=[])
    client.request(
        "PUT", f"/api/v1/namespaces/{tenant.name}/iam/settings", json={"min_password_length": 20}
    )
    with pytest.raises(ObpApiError) as short:
        client.iam.set_password(tenant.name, str(identity["id"]), "only sixteen chr")
    assert short.value.status == 422
    assert short.value.problem["errors"][0]["loc"] == ["password"]
    assert "20" in short.value.problem["errors"][0]["msg"]
    client.iam.set_password(tenant.name, str(identity["id"]), "twenty characters ok")


def test_repeated_failures_are_throttled_without_revealing_the_login(
    client: Client, tenant: Tenant, server: ServerProcess
) -> None:
    identity = _identity(client, tenant, policies=[], password="the right password")
    url = f"{server.url}/api/v1/namespaces/{tenant.name}/iam/token"

    def attempt(username: str) -> httpx.Response:
        form = {"grant_type": "password", "username": username, "password": "wrong password!"}
        return httpx.post(url, data=form)

    for username in (str(identity["name"]), "nobody-here"):
        answers = [attempt(username) for _ in range(6)]
        assert [a.status_code for a in answers[:5]] == [401] * 5
        assert answers[5].status_code == 429
        assert int(answers[5].headers["retry-after"]) > 0
        assert len({a.json()["detail"] for a in answers[:5]}) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        trail = client.request("GET", f"/api/v1/namespaces/{tenant.name}/audit").json()["items"]
        if {r["outcome"] for r in trail} >= {"failed", "throttled"}:
            break
        time.sleep(0.05)
    assert {r["outcome"] for r in trail} >= {"failed", "throttled"}
    assert "wrong password!" not in str(trail)


def test_service_accounts_log_in_with_api_keys(
    client: Client, tenant: Tenant, as_user: Client
) -> None:
    identity = _identity(client, tenant, policies=[tenant.root_policy])
    key = client.iam.create_api_key(tenant.name, str(identity["id"]), description="ci")
    as_user.login_with_api_key(key["secret"], namespace=tenant.name)
    assert as_user.tokens is not None
    assert as_user.tokens.refresh_token is None
    assert as_user.namespaces.get(tenant.name)["name"] == tenant.name
    with Client(client.base_url) as other, pytest.raises(ObpApiError) as wrong:
        other.login_with_api_key(key["secret"][:-2] + "xx", namespace=tenant.name)
    assert wrong.value.status == 401


def test_reusing_a_refresh_token_revokes_its_whole_family(
    client: Client, tenant: Tenant, server: ServerProcess
) -> None:
    identity = _identity(client, tenant, policies=[], password="refresh passphrase")
    url = f"{server.url}/api/v1/namespaces/{tenant.name}/iam/token"
    first = httpx.post(
        url,
        data={
            "grant_type": "password",
            "username": identity["name"],
            "password": "refresh passphrase",
        },
    ).json()["refresh_token"]

    def refresh(token: str) -> httpx.Response:
        return httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": token})

    second = refresh(first)
    assert second.status_code == 200
    assert refresh(first).status_code == 401  # reuse of a rotated token
    assert refresh(second.json()["refresh_token"]).status_code == 401  # family revoked


def test_blocking_refuses_the_next_request_and_unblocking_lets_in(
    client: Client, tenant: Tenant, as_user: Client
) -> None:
    identity = _identity(client, tenant, policies=[tenant.root_policy], password="block passphrase")
    as_user.login(str(identity["name"]), "block passphrase", namespace=tenant.name)
    assert as_user.namespaces.get(tenant.name)["name"] == tenant.name
    client.iam.set_blocked(tenant.name, str(identity["id"]), blocked=True)
    token = as_user.tokens
    assert token is not None
    anonymous = httpx.get(
        f"{client.base_url}/api/v1/namespaces/{tenant.name}",
        headers={"Authorization": f"Bearer {token.access_token}"},
    )
    assert anonymous.status_code == 401
    assert "blocked" in anonymous.json()["detail"]
    client.iam.set_blocked(tenant.name, str(identity["id"]), blocked=False)
    as_user.login(str(identity["name"]), "block passphrase", namespace=tenant.name)
    assert as_user.namespaces.get(tenant.name)["name"] == tenant.name

"""The world the isolation matrix runs in: namespaces with real objects of every kind."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from obp.client import Client
from tests.e2e.isolation_matrix import PASSWORD, Tenant
from tests.process import ServerProcess


@dataclass(frozen=True)
class World:
    server: ServerProcess
    a: Tenant
    b: Tenant
    global_: Tenant
    a_root: str  # identity id of `a-root` in A
    a_root_token: str

    def ghost(self) -> Tenant:
        """A namespace that does not exist, with ids that exist nowhere."""
        return Tenant(
            name=f"ghost-{secrets.token_hex(4)}",
            root_policy=fake_id(),
            policy=fake_id(),
            role=fake_id(),
            identity=fake_id(),
            identity_name="nobody",
            api_key=fake_id(),
            api_key_secret="",
            secret="nothing-here",
            file=fake_id(),
            kv_key="nothing/here",
            markers=(),
        )


def fake_id() -> str:
    return "0190f0e0-0000-7000-8000-" + secrets.token_hex(6)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def root_policy(admin: Client, namespace: str, *, within: float = 10.0) -> str:
    """The id of the namespace's built-in root policy (it follows creation by an event)."""
    deadline = time.monotonic() + within
    while True:
        page = admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/iam/policies", params={"q": "root"}
        ).json()
        roots = [p["id"] for p in page["items"] if p["name"] == "root" and p["builtin"]]
        if roots:
            return str(roots[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {namespace!r} got no root policy in {within} s")
        time.sleep(0.1)


def populate(admin: Client, namespace: str, *, create: bool = True) -> Tenant:
    """A namespace (made unless `create` is false) with a policy, a role, an identity that has
    a password and an API key, and a secret: real ids for every path parameter."""
    base = f"/api/v1/namespaces/{namespace}"
    if create:
        admin.request("POST", "/api/v1/namespaces", json={"name": namespace})
    root = root_policy(admin, namespace)
    tag = secrets.token_hex(6)
    policy = admin.request(
        "POST",
        f"{base}/iam/policies",
        json={
            "name": f"reader-{tag}",
            "description": f"policy-marker-{tag}",
            "resources": ["secret:*"],
            "actions": ["secret.get", "secret.list"],
        },
    ).json()
    role = admin.request(
        "POST",
        f"{base}/iam/roles",
        json={"name": f"readers-{tag}", "policies": [policy["id"]]},
    ).json()
    identity = admin.request(
        "POST",
        f"{base}/iam/identities",
        json={"name": f"svc-{tag}", "roles": [role["id"]], "metadata": {"marker": tag}},
    ).json()
    admin.request(
        "PUT", f"{base}/iam/identities/{identity['id']}/password", json={"password": PASSWORD}
    )
    key = admin.request(
        "POST", f"{base}/iam/identities/{identity['id']}/api-keys", json={"description": tag}
    ).json()
    secret = f"probe-{tag}"
    secret_value = f"secret-value-{secrets.token_hex(8)}"
    file_id = fake_id()
    file_text = f"file-content-{secrets.token_hex(8)}"
    kv_key = f"probe/{tag}/ü"
    kv_value = f"kv-value-{secrets.token_hex(8)}"
    if namespace != "global":
        admin.kv.set(namespace, kv_key, kv_value)
        admin.request("PUT", f"{base}/secrets/{secret}", json={"value": secret_value})
        file_id = admin.request(
            "POST",
            f"{base}/files",
            content=file_text.encode(),
            headers={"X-OBP-File-Name": f"file-{tag}.txt", "Content-Type": "text/plain"},
        ).json()["id"]
    return Tenant(
        name=namespace,
        root_policy=root,
        policy=policy["id"],
        role=role["id"],
        identity=identity["id"],
        identity_name=identity["name"],
        api_key=key["id"],
        api_key_secret=key["secret"],
        secret=secret,
        file=file_id,
        kv_key=kv_key,
        markers=(
            kv_value,
            secret_value,
            file_text,
            f"file-{tag}.txt",
            key["secret"],
            policy["name"],
            f"policy-marker-{tag}",
            role["name"],
            identity["name"],
        ),
    )

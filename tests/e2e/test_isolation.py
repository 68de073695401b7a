"""Tenant isolation, endpoint by endpoint: an identity holding every right in namespace A gets
nothing in namespace B, nor in `global`.

The matrix is driven by the server's own OpenAPI document. Every operation that names a
namespace is sent for B, with A's root token, B's real object ids in the path and a valid body,
and must answer 403 or 404 (never 2xx, never 5xx), leave B exactly as it was, and answer the same
as for a namespace that does not exist (so no tenant can probe which others exist). Operations
that name no namespace are platform-wide: a namespace root gets 403 there. The public endpoints
(health, docs, a namespace's token endpoint and discovery documents) are listed as such, with
what they are exempt for. An operation the matrix does not know fails the test, so a new
endpoint cannot slip past it. The same token against A succeeds, so the 403s are not a broken
token's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from obp.client import Client, ObpApiError
from tests.e2e.isolation_matrix import (
    HTTP_METHODS,
    PASSWORD,
    PLATFORM,
    PUBLIC,
    TENANT,
    Body,
    Operation,
    Raw,
    Tenant,
    order,
)
from tests.e2e.isolation_world import World, populate, unique
from tests.process import ServerProcess


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    """Namespaces A and B with objects in each (and in global), and A's root logged in."""
    with server.client() as admin:
        a = populate(admin, unique("tenant-a"))
        b = populate(admin, unique("tenant-b"))
        global_ = populate(admin, "global", create=False)
        base = f"/api/v1/namespaces/{a.name}/iam/identities"
        a_root = admin.request("POST", base, json={"name": "a-root"}).json()["id"]
        patched = admin.request(
            "PATCH", f"{base}/{a_root}", json={"policies": [a.root_policy]}
        ).json()
        assert [p["id"] for p in patched["policies"]] == [a.root_policy]
        admin.request("PUT", f"{base}/{a_root}/password", json={"password": PASSWORD})
    with Client(server.url) as sdk:
        tokens = sdk.login("a-root", PASSWORD, namespace=a.name)
    return World(
        server=server, a=a, b=b, global_=global_, a_root=a_root, a_root_token=tokens.access_token
    )


@pytest.fixture
def intruder(world: World) -> Iterator[httpx.Client]:
    """Raw HTTP as A's root."""
    headers = {"Authorization": f"Bearer {world.a_root_token}"}
    with httpx.Client(base_url=world.server.url, headers=headers, timeout=30.0) as http:
        yield http


# --- the matrix ---------------------------------------------------------------------------------


def _operations(server: ServerProcess) -> set[Operation]:
    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10.0).json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _classified(server: ServerProcess) -> tuple[list[Operation], list[Operation]]:
    """The document's tenant and platform operations; fails on any the matrix does not know."""
    operations = _operations(server)
    unknown = sorted(operations - PUBLIC.keys() - PLATFORM.keys() - TENANT.keys())
    assert not unknown, (
        "operations the isolation matrix does not know; add each to TENANT (with a valid "
        f"body), PLATFORM, or, if it must answer without a token, PUBLIC: {unknown}"
    )
    stale = sorted((PLATFORM.keys() | TENANT.keys()) - operations)
    assert not stale, f"the matrix lists operations the server no longer has: {stale}"
    tenant = sorted(operations & TENANT.keys(), key=lambda op: (order(op[0]), op[1]))
    return tenant, sorted(operations & PLATFORM.keys())


def _path(template: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"the matrix has no value for path parameter {{{name}}}"
        return quote(values[name], safe="")

    return re.sub(r"\{(\w+)\}", fill, template)


def _send(http: httpx.Client, method: str, path: str, body: Body) -> httpx.Response:
    if body is None:
        return http.request(method, path)
    if isinstance(body, Raw):
        return http.request(method, path, content=body.content, headers=body.headers)
    return http.request(method, path, json=body)


def _read(admin: Client, path: str, **params: Any) -> tuple[int, Any]:
    try:
        response = admin.request("GET", path, params=params)
    except ObpApiError as exc:
        return exc.status, exc.problem.get("detail")
    return response.status_code, response.json()


def _snapshot(admin: Client, tenant: Tenant) -> dict[str, Any]:
    """Everything an administrator can read of a tenant."""
    base = f"/api/v1/namespaces/{tenant.name}"
    state: dict[str, Any] = {
        "namespace": _read(admin, base),
        "settings": _read(admin, f"{base}/iam/settings"),
        "keys": _read(admin, f"{base}/vault/keys"),
    }
    for kind in ("policies", "roles", "identities"):
        state[kind] = _read(admin, f"{base}/iam/{kind}", limit=1000)
    identities = state["identities"][1]["items"] if state["identities"][0] == 200 else []
    for identity in identities:
        state[f"api-keys {identity['name']}"] = _read(
            admin, f"{base}/iam/identities/{identity['id']}/api-keys", limit=1000
        )
    state["secrets"] = _read(admin, f"{base}/secrets", limit=1000)
    listed = state["secrets"][1]["items"] if state["secrets"][0] == 200 else []
    for secret in listed:
        state[f"secret {secret['name']}"] = _read(admin, f"{base}/secrets/{secret['name']}")
    state["files"] = _read(admin, f"{base}/files", limit=1000)
    for item in state["files"][1]["items"] if state["files"][0] == 200 else []:
        content = admin.request("GET", f"{base}/files/{item['id']}").content
        state[f"file {item['id']}"] = hashlib.sha256(content).hexdigest()
    state["kv"] = _read(admin, f"{base}/kv", limit=1000)
    for item in state["kv"][1]["items"] if state["kv"][0] == 200 else []:
        state[f"kv {item['key']}"] = admin.kv.get(tenant.name, item["key"])
    return state


def _refusals(
    http: httpx.Client, operations: list[Operation], target: Tenant
) -> dict[Operation, int]:
    """Send every operation at `target`; the statuses, after checking each is a clean refusal."""
    statuses: dict[Operation, int] = {}
    wrong: list[str] = []
    values = target.path_values()
    for method, template in operations:
        response = _send(http, method, _path(template, values), TENANT[method, template](target))
        statuses[method, template] = response.status_code
        where = f"{method} {template}"
        if response.status_code not in (403, 404):
            wrong.append(f"{where} -> {response.status_code} {response.text[:300]}")
            continue
        if not response.headers.get("content-type", "").startswith("application/problem+json"):
            wrong.append(f"{where} -> {response.status_code} without a problem body")
        leaked = [marker for marker in target.markers if marker in response.text]
        if leaked:
            wrong.append(f"{where} -> {response.status_code} carries {leaked}")
    assert not wrong, (
        f"namespace {target.name!r} answered A's root with more than 403/404:\n" + "\n".join(wrong)
    )
    return statuses


def test_every_operation_of_the_api_is_known_to_the_isolation_matrix(world: World) -> None:
    tenant, platform = _classified(world.server)
    assert all("{ns}" in path for _, path in tenant)
    assert not any("{ns}" in path for _, path in platform)
    named = [op for op in _operations(world.server) if "{ns}" in op[1]]
    assert set(named) <= set(tenant) | PUBLIC.keys()


def test_a_namespace_root_gets_403_or_404_for_every_operation_on_another_namespace(
    world: World, intruder: httpx.Client
) -> None:
    tenant, _ = _classified(world.server)
    with world.server.client() as admin:
        before = _snapshot(admin, world.b)
        statuses = _refusals(intruder, tenant, world.b)
        after = _snapshot(admin, world.b)
    assert after == before, "A's root changed namespace B"
    assert len(statuses) == len(TENANT)
    print(f"{len(statuses)} operations on B: {sorted(Counter(statuses.values()).items())}")
    # Its credentials still work as they did: nothing was reset, revoked or re-keyed.
    with Client(world.server.url) as sdk:
        sdk.login(world.b.identity_name, PASSWORD, namespace=world.b.name)
        sdk.login_with_api_key(world.b.api_key_secret, namespace=world.b.name)


def test_a_namespace_root_gets_403_or_404_for_every_operation_on_the_global_namespace(
    world: World, intruder: httpx.Client
) -> None:
    tenant, _ = _classified(world.server)
    with world.server.client() as admin:
        before = _snapshot(admin, world.global_)
        _refusals(intruder, tenant, world.global_)
        after = _snapshot(admin, world.global_)
    assert after == before, "A's root changed the global namespace"
    with world.server.client() as admin:
        assert admin.request("GET", "/api/v1/vault").status_code == 200


def test_another_namespace_answers_exactly_as_one_that_does_not_exist(
    world: World, intruder: httpx.Client
) -> None:
    tenant, _ = _classified(world.server)
    existing = _refusals(intruder, tenant, world.b)
    missing = _refusals(intruder, tenant, world.ghost())
    differ = {
        f"{m} {p}": (existing[m, p], missing[m, p])
        for m, p in tenant
        if existing[m, p] != missing[m, p]
    }
    assert not differ, f"(B, nonexistent) statuses tell whether B exists: {differ}"


def test_platform_wide_operations_refuse_a_namespace_root_with_403(
    world: World, intruder: httpx.Client
) -> None:
    _, platform = _classified(world.server)
    assert platform, "the API has platform-wide operations"
    answers = {
        f"{method} {path}": _send(intruder, method, path, PLATFORM[method, path])
        for method, path in platform
    }
    wrong = {op: (r.status_code, r.text[:200]) for op, r in answers.items() if r.status_code != 403}
    assert not wrong, f"platform-wide operations let a namespace root in: {wrong}"
    listed = answers["GET /api/v1/namespaces"].text
    assert world.b.name not in listed
    assert world.a.name not in listed
    with world.server.client() as admin:
        status, _ = _read(admin, "/api/v1/namespaces/isolation-intruder")
    assert status == 404


def test_the_same_token_reads_and_writes_in_its_own_namespace(
    world: World, intruder: httpx.Client
) -> None:
    tenant, _ = _classified(world.server)
    values = world.a.path_values()
    reads = [(m, p) for m, p in tenant if m == "GET"]
    assert reads
    answers = {f"GET {p}": intruder.get(_path(p, values)) for _, p in reads}
    failed = {
        op: (r.status_code, r.text[:200]) for op, r in answers.items() if r.status_code != 200
    }
    assert not failed, f"A's root cannot read its own namespace: {failed}"

    base = f"/api/v1/namespaces/{world.a.name}"
    written = intruder.put(f"{base}/secrets/own-secret", json={"value": "mine"})
    assert written.status_code == 201, written.text
    stored = intruder.put(f"{base}/kv/own/key", content=b"mine", headers={"If-None-Match": "*"})
    assert stored.status_code == 201, stored.text
    assert intruder.get(f"{base}/kv/own/key").content == b"mine"
    assert intruder.get(f"{base}/secrets/own-secret").json()["value"] == "mine"
    policy = intruder.post(
        f"{base}/iam/policies",
        json={"name": unique("own"), "resources": ["secret:own-*"], "actions": ["secret.get"]},
    )
    assert policy.status_code == 201, policy.text
    role = intruder.patch(f"{base}/iam/roles/{world.a.role}", json={"description": "mine"})
    assert role.status_code == 200, role.text
    key = intruder.post(f"{base}/iam/identities/{world.a.identity}/api-keys", json={})
    assert key.status_code == 201, key.text
    check = intruder.post(
        f"{base}/iam/authz/check",
        json={"checks": [{"action": "secret.get", "resource": "secret:anything"}]},
    )
    assert check.status_code == 200, check.text
    assert [d["allowed"] for d in check.json()["decisions"]] == [True]


def test_asking_another_namespaces_authz_endpoint_about_oneself_is_always_denied(
    world: World, intruder: httpx.Client
) -> None:
    # Without `identity` the question is about the caller: a verifier in B may ask it about
    # any token it receives, so a 200 is allowed, but every answer for B must be "no".
    base = f"/api/v1/namespaces/{world.b.name}"
    checks = [
        {"action": "secret.get", "resource": f"secret:{world.b.secret}"},
        {"action": "iam.identity.update", "resource": f"iam:identity/{world.b.identity}"},
        {"action": "*", "resource": "*"},
    ]
    answer = intruder.post(f"{base}/iam/authz/check", json={"checks": checks})
    assert answer.status_code in (200, 403), answer.text
    if answer.status_code == 200:
        decisions = answer.json()["decisions"]
        assert [(d["namespace"], d["allowed"]) for d in decisions] == [(world.b.name, False)] * 3


def test_another_namespaces_token_endpoint_does_not_take_its_credentials(world: World) -> None:
    b_token = f"{world.server.url}/api/v1/namespaces/{world.b.name}/iam/token"
    a_token = f"{world.server.url}/api/v1/namespaces/{world.a.name}/iam/token"
    wrong_ns = httpx.post(
        b_token, data={"grant_type": "password", "username": "a-root", "password": PASSWORD}
    )
    assert wrong_ns.status_code == 401, wrong_ns.text
    api_key = httpx.post(
        b_token,
        data={
            "grant_type": "client_credentials",
            "client_id": world.a.api_key,
            "client_secret": world.a.api_key_secret,
        },
    )
    assert api_key.status_code == 401, api_key.text

    with Client(world.server.url) as sdk:
        tokens = sdk.login("a-root", PASSWORD, namespace=world.a.name)
    assert tokens.refresh_token is not None
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    elsewhere = httpx.post(b_token, data=refresh)
    assert elsewhere.status_code == 401, elsewhere.text
    # B's revocation endpoint answers 200 to anything, and revokes nothing of A's.
    revoke = f"{world.server.url}/api/v1/namespaces/{world.b.name}/iam/token/revoke"
    assert httpx.post(revoke, data={"token": tokens.refresh_token}).status_code == 200
    at_home = httpx.post(a_token, data=refresh)
    assert at_home.status_code == 200, "A's refresh token must still work in A"


def test_another_namespaces_keys_do_not_verify_its_tokens(
    world: World, intruder: httpx.Client
) -> None:
    header, claims, signature = world.a_root_token.split(".")
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    jwks = httpx.get(
        f"{world.server.url}/api/v1/namespaces/{world.b.name}/.well-known/jwks.json"
    ).json()
    assert kid not in {key["kid"] for key in jwks["keys"]}

    # The same token with its namespace claim rewritten to B: refused, not B's root.
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged_claims = {**decoded, "ns": world.b.name}
    forged = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode(),
            signature,
        ]
    )
    answer = httpx.get(
        f"{world.server.url}/api/v1/namespaces/{world.b.name}/iam/identities",
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert answer.status_code == 401, answer.text


def test_policies_and_roles_of_another_namespace_cannot_be_attached_in_ones_own(
    world: World, intruder: httpx.Client
) -> None:
    base = f"/api/v1/namespaces/{world.a.name}/iam"
    attempts = {
        "own identity gets B's root": intruder.patch(
            f"{base}/identities/{world.a_root}", json={"policies": [world.b.root_policy]}
        ),
        "own identity gets B's role": intruder.patch(
            f"{base}/identities/{world.a_root}", json={"roles": [world.b.role]}
        ),
        "new identity with B's root": intruder.post(
            f"{base}/identities", json={"name": unique("x"), "policies": [world.b.root_policy]}
        ),
        "new role with B's root": intruder.post(
            f"{base}/roles", json={"name": unique("x"), "policies": [world.b.root_policy]}
        ),
    }
    wrong = {
        what: (r.status_code, r.text[:200]) for what, r in attempts.items() if r.status_code != 422
    }
    assert not wrong, f"A's root attached B's grants in A: {wrong}"
    still = intruder.get(f"/api/v1/namespaces/{world.b.name}/iam/identities")
    assert still.status_code == 403, still.text


def test_a_namespace_root_cannot_make_itself_a_platform_admin_with_the_global_root_policy(
    world: World,
) -> None:
    # Its own identity, so what it gains cannot leak into the other tests.
    with world.server.client() as admin:
        base = f"/api/v1/namespaces/{world.a.name}/iam"
        name = unique("climber")
        climber = admin.request(
            "POST", f"{base}/identities", json={"name": name, "policies": [world.a.root_policy]}
        ).json()["id"]
        admin.request("PUT", f"{base}/identities/{climber}/password", json={"password": PASSWORD})
        try:
            with Client(world.server.url) as sdk:
                sdk.login(name, PASSWORD, namespace=world.a.name)
                assert sdk.tokens is not None
                headers = {"Authorization": f"Bearer {sdk.tokens.access_token}"}
            with httpx.Client(base_url=world.server.url, headers=headers) as http:
                direct = http.patch(
                    f"{base}/identities/{climber}",
                    json={"policies": [world.a.root_policy, world.global_.root_policy]},
                )
                role = http.post(
                    f"{base}/roles",
                    json={"name": unique("ladder"), "policies": [world.global_.root_policy]},
                )
                via_role = (
                    http.patch(f"{base}/identities/{climber}", json={"roles": [role.json()["id"]]})
                    if role.status_code == 201
                    else role
                )
                reach = http.get(f"/api/v1/namespaces/{world.b.name}/iam/identities")
            attached = {
                "policy": (direct.status_code, direct.text[:300]),
                "role": (via_role.status_code, via_role.text[:300]),
            }
            escalated = (
                "a namespace root attached the global root policy (namespace-independent) to "
                "itself: only the policy id stood between it and every tenant. "
                f"{attached}; then GET B's identities -> {reach.status_code}"
            )
            assert direct.status_code in (403, 422), escalated
            assert via_role.status_code in (403, 422), escalated
            assert reach.status_code == 403, reach.text
        finally:
            admin.request("DELETE", f"{base}/identities/{climber}")

"""Access changes made on one replica hold on the other: blocking at once, grants over the bus.

Two `obp serve` replicas share one PostgreSQL database, one Redis and one RabbitMQ exchange of
this test's own, and the same public URL (the token issuer), as behind a reverse proxy. Blocking
writes a flag to the shared cache, so the blocked identity's very next request is refused on
every replica, however fresh its access token; a policy change travels as an event, after which
every replica recompiles the identity's grants.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.integration.helpers import bus_url, delete_exchange, unique_exchange
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import ServerProcess, free_port
from tests.servers import server_url

pytestmark = pytest.mark.slow

PASSWORD = "replica passphrase 0001"
PROPAGATION_SECONDS = 5.0


@dataclass
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    servers: tuple[ServerProcess, ServerProcess]


@pytest_asyncio.fixture
async def replicas(tmp_path: Path, postgres_url: str) -> AsyncIterator[Replicas]:
    """Replicas A and B on shared backends, one HTTP client each; stopped afterwards."""
    amqp = server_url("amqp")
    exchange = unique_exchange()
    env = {
        "OBP_DATA_DIR": str(tmp_path / "data"),
        "OBP_DATABASE_URL": postgres_url,
        "OBP_CACHE_URL": server_url("redis"),
        "OBP_BUS_URL": bus_url(amqp, exchange=exchange),
        "OBP_WORKERS": "1",
        "OBP_MIGRATE_ON_START": "true",
        "OBP_LOG_LEVEL": "info",
        "OBP_LOG_FORMAT": "json",
        # One issuer for both, as behind a proxy: each accepts the other's tokens.
        "OBP_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
    }
    a = ServerProcess(env=env, cwd=tmp_path)
    b = ServerProcess(env=env, cwd=tmp_path)
    try:
        outcomes = await asyncio.gather(
            asyncio.to_thread(a.start, timeout=45.0),
            asyncio.to_thread(b.start, timeout=45.0),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert not failures, f"the replicas did not start: {failures}"
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20.0) as on_a,
            httpx.AsyncClient(base_url=b.url, timeout=20.0) as on_b,
        ):
            yield Replicas(a=on_a, b=on_b, servers=(a, b))
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        await delete_exchange(amqp, exchange)


async def _ok(response: Awaitable[httpx.Response], *expected: int) -> httpx.Response:
    answer = await response
    assert answer.status_code in (expected or (200,)), f"{answer.status_code} {answer.text}"
    return answer


async def _token(
    client: httpx.AsyncClient, namespace: str, username: str, password: str
) -> dict[str, str]:
    """The token response of a password login."""
    answer = await client.post(
        f"/api/v1/namespaces/{namespace}/iam/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.05
) -> float:
    """Poll until `condition` holds; the seconds it took, or `TimeoutError` after `within` s."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > within:
            raise TimeoutError(f"still not so after {within} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


@dataclass
class Tenant:
    namespace: str
    admin: dict[str, str]  # Authorization header of the global admin
    identity: str
    name: str
    root_policy: str

    @property
    def base(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}"


async def _tenant(replicas: Replicas) -> Tenant:
    """On A, as the global admin: a namespace and an identity with its root policy and a
    password."""
    admin = _bearer(await _token(replicas.a, "global", ADMIN_LOGIN, ADMIN_PASSWORD))
    namespace = f"acme-{uuid.uuid4().hex[:8]}"
    await _ok(replicas.a.post("/api/v1/namespaces", json={"name": namespace}, headers=admin), 201)
    base = f"/api/v1/namespaces/{namespace}/iam"

    async def root() -> list[str]:
        page = await _ok(replicas.a.get(f"{base}/policies", params={"q": "root"}, headers=admin))
        return [p["id"] for p in page.json()["items"] if p["name"] == "root" and p["builtin"]]

    await _wait_for(lambda: _truthy(root()), within=10.0)
    (root_policy,) = await root()
    identity = await _ok(
        replicas.a.post(
            f"{base}/identities",
            json={"name": "worker", "policies": [root_policy]},
            headers=admin,
        ),
        201,
    )
    identity_id = identity.json()["id"]
    await _ok(
        replicas.a.put(
            f"{base}/identities/{identity_id}/password",
            json={"password": PASSWORD},
            headers=admin,
        ),
        204,
    )
    return Tenant(
        namespace=namespace,
        admin=admin,
        identity=identity_id,
        name="worker",
        root_policy=root_policy,
    )


async def _truthy(pending: Awaitable[list[str]]) -> bool:
    return bool(await pending)


async def test_a_blocked_identity_is_refused_on_the_other_replica_at_its_very_next_request(
    replicas: Replicas,
) -> None:
    tenant = await _tenant(replicas)
    a, b = replicas.a, replicas.b
    tokens = await _token(a, tenant.namespace, tenant.name, PASSWORD)
    own = f"{tenant.base}/iam/identities"
    # Both replicas have compiled its grants: they would allow it from their caches.
    await _ok(b.get(own, headers=_bearer(tokens)))
    await _ok(a.get(own, headers=_bearer(tokens)))

    blocked = await _ok(
        a.post(f"{own}/{tenant.identity}/block", headers=tenant.admin),
    )
    assert blocked.json()["active"] is False
    started = time.monotonic()
    on_b = await b.get(own, headers=_bearer(tokens))
    refused_after = time.monotonic() - started
    assert on_b.status_code == 401, f"B let a blocked identity in: {on_b.status_code} {on_b.text}"
    assert on_b.headers["content-type"].startswith("application/problem+json")
    assert (await a.get(own, headers=_bearer(tokens))).status_code == 401

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    for replica in (b, a):
        renewed = await replica.post(f"{tenant.base}/iam/token", data=refresh)
        assert renewed.status_code == 401, renewed.text
    login = {"grant_type": "password", "username": tenant.name, "password": PASSWORD}
    assert (await b.post(f"{tenant.base}/iam/token", data=login)).status_code == 401

    unblocked = await _ok(b.post(f"{own}/{tenant.identity}/unblock", headers=tenant.admin))
    assert unblocked.json()["active"] is True
    fresh = await _token(a, tenant.namespace, tenant.name, PASSWORD)
    await _ok(a.get(own, headers=_bearer(fresh)))
    await _ok(b.get(own, headers=_bearer(fresh)))
    print(f"block on A refused the next request on B ({refused_after * 1000:.1f} ms round trip)")


async def test_detaching_the_root_policy_on_one_replica_denies_on_the_other_within_seconds(
    replicas: Replicas,
) -> None:
    tenant = await _tenant(replicas)
    a, b = replicas.a, replicas.b
    headers = _bearer(await _token(a, tenant.namespace, tenant.name, PASSWORD))
    own = f"{tenant.base}/iam/identities"
    await _ok(b.get(own, headers=headers))

    detached = await _ok(
        a.patch(f"{own}/{tenant.identity}", json={"policies": []}, headers=tenant.admin)
    )
    assert detached.json()["policies"] == []

    async def denied_on_b() -> bool:
        answer = await b.get(own, headers=headers)
        assert answer.status_code in (200, 403), answer.text
        return answer.status_code == 403

    took = await _wait_for(denied_on_b, within=PROPAGATION_SECONDS)
    denial = (await b.get(own, headers=headers)).json()
    assert "iam.identity.list" in denial["detail"], denial
    assert (await a.get(own, headers=headers)).status_code == 403
    print(f"detaching the root policy on A reached B in {took * 1000:.0f} ms")


async def test_policy_and_role_edits_on_either_replica_reach_the_other_within_seconds(
    replicas: Replicas,
) -> None:
    tenant = await _tenant(replicas)
    a, b = replicas.a, replicas.b
    iam = f"{tenant.base}/iam"
    policy = await _ok(
        a.post(
            f"{iam}/policies",
            json={"name": "lister", "resources": ["iam:identity/*"], "actions": ["iam.*.list"]},
            headers=tenant.admin,
        ),
        201,
    )
    role = await _ok(
        a.post(
            f"{iam}/roles",
            json={"name": "listers", "policies": [policy.json()["id"]]},
            headers=tenant.admin,
        ),
        201,
    )
    # Only the role now: the root policy goes.
    await _ok(
        a.patch(
            f"{iam}/identities/{tenant.identity}",
            json={"policies": [], "roles": [role.json()["id"]]},
            headers=tenant.admin,
        )
    )
    headers = _bearer(await _token(a, tenant.namespace, tenant.name, PASSWORD))
    listing = f"{iam}/identities"

    async def status_on(replica: httpx.AsyncClient, wanted: int) -> bool:
        answer = await replica.get(listing, headers=headers)
        assert answer.status_code in (200, 403), answer.text
        return answer.status_code == wanted

    await _wait_for(lambda: status_on(b, 200), within=PROPAGATION_SECONDS)
    timings: dict[str, float] = {}

    # Narrow the policy on A: B stops allowing.
    await _ok(
        a.patch(
            f"{iam}/policies/{policy.json()['id']}",
            json={"actions": ["secret.get"]},
            headers=tenant.admin,
        )
    )
    timings["policy narrowed on A, B denies"] = await _wait_for(
        lambda: status_on(b, 403), within=PROPAGATION_SECONDS
    )
    # Widen it again on B: A allows again.
    await _ok(
        b.patch(
            f"{iam}/policies/{policy.json()['id']}",
            json={"actions": ["iam.identity.list"]},
            headers=tenant.admin,
        )
    )
    timings["policy widened on B, A allows"] = await _wait_for(
        lambda: status_on(a, 200), within=PROPAGATION_SECONDS
    )
    await _wait_for(lambda: status_on(b, 200), within=PROPAGATION_SECONDS)
    # Empty the role on B: A denies.
    await _ok(
        b.patch(f"{iam}/roles/{role.json()['id']}", json={"policies": []}, headers=tenant.admin)
    )
    timings["role emptied on B, A denies"] = await _wait_for(
        lambda: status_on(a, 403), within=PROPAGATION_SECONDS
    )
    print({what: f"{took * 1000:.0f} ms" for what, took in timings.items()})

"""A namespace deleted and created again before its purge ran belongs to nobody from before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from obp.http.app import create_app
from obp.settings import Settings
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD

TOKEN = "/api/v1/namespaces/{ns}/iam/token"


@pytest_asyncio.fixture
async def admin(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The admin of an in-process platform whose relay is stopped: no purge ever runs."""
    app = create_app(
        Settings(
            data_dir=tmp_path / "obp-data", admin_login=ADMIN_LOGIN, admin_password=ADMIN_PASSWORD
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://obp") as http,
    ):
        await app.state.platform.relay.stop()
        token = await _login(http, "global", ADMIN_LOGIN, ADMIN_PASSWORD)
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


async def _login(http: httpx.AsyncClient, ns: str, user: str, password: str) -> str:
    answer = await http.post(
        TOKEN.format(ns=ns),
        data={"grant_type": "password", "username": user, "password": password},
        headers={"Authorization": ""},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def _root_policy(http: httpx.AsyncClient, ns: str) -> str:
    items = (await http.get(f"/api/v1/namespaces/{ns}/iam/policies")).json()["items"]
    roots = [p["id"] for p in items if p["name"] == "root"]
    assert len(roots) == 1
    return str(roots[0])


async def test_members_of_a_deleted_namespace_cannot_use_the_new_one(
    admin: httpx.AsyncClient,
) -> None:
    assert (await admin.post("/api/v1/namespaces", json={"name": "acme"})).status_code == 201
    old_root = await _root_policy(admin, "acme")
    made = await admin.post(
        "/api/v1/namespaces/acme/iam/identities", json={"name": "mallory", "policies": [old_root]}
    )
    mallory = made.json()["id"]
    await admin.put(
        f"/api/v1/namespaces/acme/iam/identities/{mallory}/password",
        json={"password": "mallory's password"},
    )
    old_token = await _login(admin, "acme", "mallory", "mallory's password")

    assert (await admin.delete("/api/v1/namespaces/acme")).status_code == 204
    assert (await admin.post("/api/v1/namespaces", json={"name": "acme"})).status_code == 201

    # Her rows are still there (no purge ran), yet she is not a member of the new acme.
    reused = await admin.get(
        "/api/v1/namespaces/acme", headers={"Authorization": f"Bearer {old_token}"}
    )
    assert reused.status_code == 401
    login = await admin.post(
        TOKEN.format(ns="acme"),
        data={"grant_type": "password", "username": "mallory", "password": "mallory's password"},
        headers={"Authorization": ""},
    )
    assert login.status_code == 401
    # And the new acme gets a root policy of its own, not the old one.
    assert await _root_policy(admin, "acme") != old_root

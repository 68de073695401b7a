"""Authentication through its HTTP routes, on every database engine: the token, revocation,
API key, password and settings endpoints and the public discovery documents, served by an
in-process app."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from obp.http.deps import get_principal
from obp.http.problems import install_error_handlers
from obp.kernel.errors import Unauthorized
from obp.services.iam.auth import LOGIN_FAILED
from obp.services.iam.credential_router import router as credential_router
from obp.services.iam.token_router import oauth_router
from tests.integration.auth_world import (
    NS,
    PASSWORD,
    World,
    world_fixture,  # noqa: F401  (the `world` fixture)
)
from tests.principals import OPERATOR


@pytest_asyncio.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The token routes in an app of their own, the caller being the operator."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(oauth_router)
    app.include_router(credential_router)
    app.state.platform = SimpleNamespace(auth=world.auth)
    app.dependency_overrides[get_principal] = lambda: OPERATOR
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


TOKEN = f"/api/v1/namespaces/{NS}/iam/token"


async def test_the_token_endpoint_takes_a_form_or_json_and_is_never_cached(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.identity()
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    by_form = await client.post(TOKEN, data=form)
    assert by_form.status_code == 200, by_form.text
    assert by_form.headers["cache-control"] == "no-store"
    body = by_form.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    by_json = await client.post(
        TOKEN, json={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert by_json.status_code == 200, by_json.text
    assert by_json.json()["refresh_token"] != body["refresh_token"]


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({}, 400, "invalid_request", "grant_type"),
        ({"grant_type": "implicit"}, 400, "unsupported_grant_type", "grant_type"),
        ({"grant_type": "password", "username": "alice"}, 400, "invalid_request", "password"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request", "refresh_token"),
        ({"grant_type": "client_credentials"}, 400, "invalid_request", "client_id"),
        (
            {"grant_type": "password", "username": 1, "password": "x"},
            400,
            "invalid_request",
            "username",
        ),
    ],
)
async def test_the_token_endpoint_names_the_field_it_cannot_accept(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, error: str, field: str
) -> None:
    response = await client.post(TOKEN, json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["error"] == error
    assert problem["errors"][0]["loc"] == ["body", field]
    assert field in problem["detail"]


async def test_the_token_endpoint_refuses_other_media_types(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN, content=b"grant_type=password", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


async def test_bad_credentials_get_401_and_a_locked_login_429_with_retry_after(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.identity()
    wrong = {"grant_type": "password", "username": "alice", "password": "not it at all"}
    for _ in range(5):
        response = await client.post(TOKEN, data=wrong)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_grant"
        assert response.json()["detail"] == LOGIN_FAILED
    locked = await client.post(TOKEN, data={**wrong, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    refused = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_grant")


async def test_client_credentials_work_in_the_body_and_as_http_basic(
    world: World, client: httpx.AsyncClient
) -> None:
    robot = await world.identity("robot", password=None)
    keys = f"/api/v1/namespaces/{NS}/iam/identities/{robot.id}/api-keys"
    created = await client.post(keys, json={"description": "deploy bot"})
    assert created.status_code == 201, created.text
    key = created.json()
    grant = {"grant_type": "client_credentials"}
    in_body = await client.post(
        TOKEN, data={**grant, "client_id": key["id"], "client_secret": key["secret"]}
    )
    assert in_body.status_code == 200, in_body.text
    assert "refresh_token" not in in_body.json()
    basic = base64.b64encode(f"{key['id']}:{key['secret']}".encode()).decode()
    as_basic = await client.post(TOKEN, data=grant, headers={"authorization": f"Basic {basic}"})
    assert as_basic.status_code == 200, as_basic.text
    bad = base64.b64encode(f"{key['id']}:nope".encode()).decode()
    refused = await client.post(TOKEN, data=grant, headers={"authorization": f"Basic {bad}"})
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert refused.headers["www-authenticate"].startswith("Basic")


async def test_api_key_secrets_appear_only_when_created(
    world: World, client: httpx.AsyncClient
) -> None:
    robot = await world.identity("robot", password=None)
    keys = f"/api/v1/namespaces/{NS}/iam/identities/{robot.id}/api-keys"
    created = (await client.post(keys, json={})).json()
    assert created["secret"].startswith(f"obp_{created['id']}_")
    listed = await client.get(keys)
    assert listed.status_code == 200
    assert listed.json()["items"] == [
        {k: created[k] for k in ("id", "identity_id", "description", "created_at")}
    ]
    assert created["secret"] not in listed.text
    assert (await client.delete(f"{keys}/{created['id']}")).status_code == 204
    assert (await client.delete(f"{keys}/{created['id']}")).status_code == 204
    assert (await client.get(keys)).json()["items"] == []


async def test_a_short_password_gets_422_naming_the_field_and_the_minimum(
    world: World, client: httpx.AsyncClient
) -> None:
    alice = await world.identity(password=None)
    url = f"/api/v1/namespaces/{NS}/iam/identities/{alice.id}/password"
    refused = await client.put(url, json={"password": "short"})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["errors"][0]["loc"] == ["password"]
    assert "at least 12" in problem["errors"][0]["msg"]
    assert (await client.put(url, json={"password": PASSWORD})).status_code == 204
    assert (await world.login()).refresh_token is not None


async def test_password_rules_are_read_and_changed_over_http(
    world: World, client: httpx.AsyncClient
) -> None:
    url = f"/api/v1/namespaces/{NS}/iam/settings"
    assert (await client.get(url)).json() == {
        "min_password_length": 12,
        "max_password_length": 1024,
    }
    changed = await client.put(url, json={"min_password_length": 16})
    assert changed.status_code == 200
    assert changed.json()["min_password_length"] == 16
    refused = await client.put(url, json={"min_password_length": 3})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["min_password_length"]


async def test_the_revoke_endpoint_answers_200_whatever_the_token(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.identity()
    pair = await world.login()
    revoke = f"{TOKEN}/revoke"
    for token in ("unknown", pair.access_token, pair.refresh_token):
        response = await client.post(revoke, data={"token": token})
        assert response.status_code == 200
    with pytest.raises(Unauthorized):
        await world.refresh(pair.refresh_token)
    missing = await client.post(revoke, json={})
    assert (missing.status_code, missing.json()["errors"][0]["loc"]) == (400, ["body", "token"])


async def test_the_discovery_documents_are_public(world: World, client: httpx.AsyncClient) -> None:
    await world.identity()
    await world.login()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(oauth_router)
    app.include_router(credential_router)
    app.state.platform = SimpleNamespace(auth=world.auth)  # no principal override: anonymous
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous:
        key_set = await anonymous.get(f"/api/v1/namespaces/{NS}/.well-known/jwks.json")
        config = await anonymous.get(f"/api/v1/namespaces/{NS}/.well-known/openid-configuration")
    assert key_set.status_code == 200
    assert [key["alg"] for key in key_set.json()["keys"]] == ["ES256"]
    assert config.status_code == 200
    assert config.json()["jwks_uri"].endswith(f"/namespaces/{NS}/.well-known/jwks.json")

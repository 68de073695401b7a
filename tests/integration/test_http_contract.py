"""The HTTP contract in process: problem+json, request ids, metrics, OpenAPI, readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import FastAPI

from obp.http.app import create_app
from obp.settings import Settings
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD


async def _serve(app: FastAPI, *, login: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, logged in as the global admin unless `login` is False."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://obp") as client,
    ):
        if not login:
            yield client
            return
        token = await client.post(
            "/api/v1/namespaces/global/iam/token",
            data={"grant_type": "password", "username": ADMIN_LOGIN, "password": ADMIN_PASSWORD},
        )
        assert token.status_code == 200, token.text
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


@pytest_asyncio.fixture
async def app(tmp_path: Path) -> FastAPI:
    """An app on the embedded defaults, with a small body limit to test 413 cheaply."""
    return create_app(
        Settings(
            data_dir=tmp_path / "obp-data",
            max_request_bytes=4096,
            admin_login=ADMIN_LOGIN,
            admin_password=ADMIN_PASSWORD,
        )
    )


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, with its lifespan running."""
    async for client in _serve(app):
        yield client


async def test_echoes_a_safe_incoming_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"


async def test_replaces_an_unsafe_incoming_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 36


async def test_unexpected_errors_are_500_problems_without_internals(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", boom)
    async for client in _serve(app):
        response = await client.get("/boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret" not in response.text
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_oversized_body_is_413_with_or_without_content_length(
    client: httpx.AsyncClient,
) -> None:
    big = b'{"name": "' + b"a" * 8000 + b'"}'
    declared = await client.post(
        "/api/v1/namespaces", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = await client.post(
        "/api/v1/namespaces", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    assert "4096" in streamed.json()["detail"]
    assert (await client.get("/api/v1/namespaces")).json()["items"] == []


async def test_405_keeps_the_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/namespaces")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_metrics_count_requests_per_route_template(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces", json={"name": "acme"})
    await client.get("/api/v1/namespaces/acme")
    await client.get("/api/v1/namespaces/missing")
    text = (await client.get("/metrics")).text
    assert (
        'obp_http_requests_total{method="GET",route="/api/v1/namespaces/{ns}",status="200"} 1.0'
        in text
    )
    assert (
        'obp_http_requests_total{method="GET",route="/api/v1/namespaces/{ns}",status="404"} 1.0'
        in text
    )
    assert (
        'obp_http_requests_total{method="POST",route="/api/v1/namespaces",status="201"} 1.0' in text
    )
    assert 'obp_http_request_duration_seconds_bucket{le="0.5",method="POST"' in text


async def test_openapi_31_document_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/namespaces", "/api/v1/namespaces/{ns}", "/healthz", "/readyz"} <= set(
        spec["paths"]
    )
    create = spec["paths"]["/api/v1/namespaces"]["post"]["responses"]
    assert "application/problem+json" in create["409"]["content"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_readyz_is_503_naming_the_backend_that_is_down(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "obp-data", cache_url="redis://127.0.0.1:1/0"))
    async for client in _serve(app, login=False):
        response = await client.get("/readyz")
        assert response.status_code == 503
        report = response.json()
        assert report["status"] == "unavailable"
        assert report["checks"]["cache"]["status"] == "unavailable"
        assert report["checks"]["cache"]["backend"] == "redis"
        assert report["checks"]["cache"]["reason"]
        assert report["checks"]["database"]["status"] == "ok"

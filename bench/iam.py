"""Setting up what the IAM scenarios log in as, through the API of a running `BenchServer`."""

from __future__ import annotations

import secrets

import httpx

from bench.server import BenchServer


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The `Authorization` header of an access token, as `Workload.headers`."""
    return (("Authorization", f"Bearer {token}"),)


def create_namespace(server: BenchServer, name: str, *, token: str | None) -> None:
    """Create namespace `name` (as the holder of `token`, or with no token at all)."""
    headers = dict(bearer(token)) if token is not None else None
    response = httpx.post(
        f"{server.url}/api/v1/namespaces", json={"name": name}, headers=headers, timeout=30.0
    )
    response.raise_for_status()


def create_login(server: BenchServer, namespace: str, name: str, *, token: str) -> str:
    """Create identity `name` in `namespace` (no policies) with a random password; the password."""
    headers = dict(bearer(token))
    base = f"{server.url}/api/v1/namespaces/{namespace}/iam/identities"
    created = httpx.post(base, json={"name": name}, headers=headers, timeout=30.0)
    created.raise_for_status()
    password = secrets.token_urlsafe(18)
    response = httpx.put(
        f"{base}/{created.json()['id']}/password",
        json={"password": password},
        headers=headers,
        timeout=30.0,
    )
    response.raise_for_status()
    return password

"""The Python SDK over the REST API (httpx). The CLI and the end-to-end tests use it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from obp.client_files import FilesApi
from obp.client_kv import KvApi

DEFAULT_URL = "http://127.0.0.1:8080"


class ObpApiError(Exception):
    """The API answered with an error; `problem` is its RFC 9457 body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('title', 'Error')}: {problem.get('detail', '')}")


class ObpConnectionError(Exception):
    """The server could not be reached."""


@dataclass
class Tokens:
    """A login: the access token, the refresh token that renews it, and when it expires."""

    namespace: str
    access_token: str
    refresh_token: str | None
    expires_at: float

    def expiring(self, *, within: float = 30.0) -> bool:
        """Whether the access token expires within `within` seconds."""
        return time.time() + within >= self.expires_at


class Client:
    """A synchronous client for one OBP server; it renews its access token by itself."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        tokens: Tokens | None = None,
        on_tokens: Callable[[Tokens], None] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._on_tokens = on_tokens
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self.namespaces = NamespacesApi(self)
        self.secrets = SecretsApi(self)
        self.files = FilesApi(self)
        self.kv = KvApi(self)
        self.iam = IamApi(self)

    def login(self, username: str, password: str, *, namespace: str = "global") -> Tokens:
        """Log in with a password (OAuth2 password grant)."""
        form = {"grant_type": "password", "username": username, "password": password}
        return self._grant(namespace, form)

    def login_with_api_key(self, api_key: str, *, namespace: str) -> Tokens:
        """Log in as a service account (OAuth2 client credentials with an API key)."""
        key_id = api_key.split("_")[1] if api_key.count("_") >= 2 else ""
        form = {"grant_type": "client_credentials", "client_id": key_id, "client_secret": api_key}
        return self._grant(namespace, form)

    def refresh(self) -> Tokens:
        """Renew the access token with the refresh token (which is rotated too)."""
        if self.tokens is None or self.tokens.refresh_token is None:
            raise ObpApiError(401, {"title": "Unauthorized", "detail": "log in first"})
        form = {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token}
        return self._grant(self.tokens.namespace, form)

    def logout(self) -> None:
        """Revoke the refresh token and forget the login."""
        if self.tokens is not None and self.tokens.refresh_token is not None:
            self._send(
                "POST",
                f"/api/v1/namespaces/{quote(self.tokens.namespace, safe='')}/iam/token/revoke",
                data={"token": self.tokens.refresh_token},
            )
        self.tokens = None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send an authenticated request; raise `ObpApiError` for error answers."""
        if self.tokens is not None and self.tokens.refresh_token and self.tokens.expiring():
            self.refresh()
        response = self._send(method, path, authorized=True, **kwargs)
        if response.status_code == 401 and self.tokens is not None and self.tokens.refresh_token:
            # Expired early (clock skew) or revoked: one renewal, then the answer stands.
            self.refresh()
            response = self._send(method, path, authorized=True, **kwargs)
        if response.status_code >= 400:
            raise ObpApiError(response.status_code, _problem(response))
        return response

    def page(self, path: str, **params: Any) -> dict[str, Any]:
        """One page of a listing, `{"items": [...], "next_cursor": ...}`; None params left out."""
        given = {key: value for key, value in params.items() if value is not None}
        return dict(self.request("GET", path, params=given).json())

    def every(self, path: str, *, page_size: int = 500, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following cursors."""
        cursor: str | None = None
        while True:
            page = self.page(path, limit=page_size, cursor=cursor, **params)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Like `request`, with the body left unread for `iter_bytes` (large downloads)."""
        if self.tokens is not None and self.tokens.refresh_token and self.tokens.expiring():
            self.refresh()
        headers = dict(kwargs.pop("headers", None) or {})
        if self.tokens is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens.access_token}")
        try:
            request = self._http.build_request(method, path, headers=headers, **kwargs)
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ObpConnectionError(f"cannot reach {self.base_url}: {exc}") from exc
        try:
            if response.status_code >= 400:
                response.read()
                raise ObpApiError(response.status_code, _problem(response))
            yield response
        finally:
            response.close()

    def _grant(self, namespace: str, form: dict[str, str]) -> Tokens:
        response = self._send(
            "POST", f"/api/v1/namespaces/{quote(namespace, safe='')}/iam/token", data=form
        )
        if response.status_code >= 400:
            raise ObpApiError(response.status_code, _problem(response))
        body = response.json()
        self.tokens = Tokens(
            namespace=namespace,
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            expires_at=time.time() + float(body.get("expires_in", 0)),
        )
        if self._on_tokens is not None:
            self._on_tokens(self.tokens)
        return self.tokens

    def _send(
        self, method: str, path: str, *, authorized: bool = False, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if authorized and self.tokens is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens.access_token}")
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ObpConnectionError(f"cannot reach {self.base_url}: {exc}") from exc

    def health(self) -> dict[str, Any]:
        """`GET /healthz`."""
        return dict(self.request("GET", "/healthz").json())

    def ready(self) -> dict[str, Any]:
        """`GET /readyz`: the report of every backend (raises `ObpApiError` 503 if not ready)."""
        return dict(self.request("GET", "/readyz").json())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NamespacesApi:
    """`/api/v1/namespaces`."""

    path = "/api/v1/namespaces"

    def __init__(self, client: Client) -> None:
        self._client = client

    def _item(self, name: str) -> str:
        return f"{self.path}/{quote(name, safe='')}"

    def create(self, name: str, *, full_name: str = "", description: str = "") -> dict[str, Any]:
        """Create a namespace."""
        body = {"name": name, "full_name": full_name, "description": description}
        return dict(self._client.request("POST", self.path, json=body).json())

    def get(self, name: str) -> dict[str, Any]:
        """One namespace."""
        return dict(self._client.request("GET", self._item(name)).json())

    def update(
        self, name: str, *, full_name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Change the display name and/or description."""
        body = {
            key: value
            for key, value in (("full_name", full_name), ("description", description))
            if value is not None
        }
        return dict(self._client.request("PATCH", self._item(name), json=body).json())

    def delete(self, name: str) -> None:
        """Delete a namespace (idempotent)."""
        self._client.request("DELETE", self._item(name))

    def list(
        self, *, q: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page: `{"items": [...], "next_cursor": ...}`."""
        return self._client.page(self.path, q=q, limit=limit, cursor=cursor)

    def iterate(self, *, q: str | None = None, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Every namespace matching `q`, following cursors."""
        return self._client.every(self.path, page_size=page_size, q=q)


class SecretsApi:
    """`/api/v1/namespaces/{ns}/secrets`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _path(self, namespace: str, name: str | None = None) -> str:
        base = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
        return base if name is None else f"{base}/{quote(name, safe='')}"

    def set(
        self, namespace: str, name: str, value: str, *, description: str | None = None
    ) -> dict[str, Any]:
        """Write a new version; the metadata of the stored version (never the value)."""
        body: dict[str, Any] = {"value": value}
        if description is not None:
            body["description"] = description
        return dict(self._client.request("PUT", self._path(namespace, name), json=body).json())

    def get(self, namespace: str, name: str, *, version: int | None = None) -> dict[str, Any]:
        """The secret with its value (newest version unless `version`)."""
        params = {} if version is None else {"version": version}
        return dict(self._client.request("GET", self._path(namespace, name), params=params).json())

    def delete(self, namespace: str, name: str) -> None:
        """Delete every version (idempotent)."""
        self._client.request("DELETE", self._path(namespace, name))

    def list(
        self,
        namespace: str,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of metadata: `{"items": [...], "next_cursor": ...}`."""
        return self._client.page(self._path(namespace), prefix=prefix, limit=limit, cursor=cursor)

    def iterate(self, namespace: str, *, prefix: str | None = None) -> Iterator[dict[str, Any]]:
        """Metadata of every secret, following cursors."""
        return self._client.every(self._path(namespace), prefix=prefix)


class IamApi:
    """`/api/v1/namespaces/{ns}/iam`: policies, roles, identities, passwords, API keys."""

    kinds = ("policies", "roles", "identities")

    def __init__(self, client: Client) -> None:
        self._client = client

    def _path(self, namespace: str, *parts: str) -> str:
        tail = "/".join(quote(part, safe="") for part in parts)
        return f"/api/v1/namespaces/{quote(namespace, safe='')}/iam/{tail}"

    def create(self, namespace: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a policy, role or identity (`kind` is the plural path word)."""
        return dict(self._client.request("POST", self._path(namespace, kind), json=body).json())

    def get(self, namespace: str, kind: str, item_id: str) -> dict[str, Any]:
        """One policy, role or identity."""
        return dict(self._client.request("GET", self._path(namespace, kind, item_id)).json())

    def update(
        self, namespace: str, kind: str, item_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a policy, role or identity (omitted fields keep their values)."""
        path = self._path(namespace, kind, item_id)
        return dict(self._client.request("PATCH", path, json=body).json())

    def delete(self, namespace: str, kind: str, item_id: str) -> None:
        """Delete a policy, role or identity (idempotent)."""
        self._client.request("DELETE", self._path(namespace, kind, item_id))

    def iterate(
        self, namespace: str, kind: str, *, q: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every policy, role or identity, following cursors."""
        return self._client.every(self._path(namespace, kind), q=q)

    def set_blocked(self, namespace: str, identity_id: str, *, blocked: bool) -> dict[str, Any]:
        """Block or unblock an identity."""
        action = "block" if blocked else "unblock"
        path = self._path(namespace, "identities", identity_id, action)
        return dict(self._client.request("POST", path).json())

    def set_password(self, namespace: str, identity_id: str, password: str) -> None:
        """Set an identity's password (signs out its sessions)."""
        path = self._path(namespace, "identities", identity_id, "password")
        self._client.request("PUT", path, json={"password": password})

    def create_api_key(
        self, namespace: str, identity_id: str, *, description: str = ""
    ) -> dict[str, Any]:
        """A new API key for a service account; its secret is in this answer only."""
        path = self._path(namespace, "identities", identity_id, "api-keys")
        return dict(self._client.request("POST", path, json={"description": description}).json())


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {
        "title": response.reason_phrase,
        "status": response.status_code,
        "detail": response.text,
    }

"""Namespaces end to end: the SDK against a real `obp serve`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from obp.client import Client, ObpApiError
from obp.kernel.names import NAMESPACE_PATTERN
from tests.process import ServerProcess


def _unique(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_creates_gets_updates_and_deletes_a_namespace(client: Client) -> None:
    name = _unique("acme")
    created = client.namespaces.create(name, full_name="ACME Corp", description="first tenant")
    assert created["name"] == name
    assert created["full_name"] == "ACME Corp"
    fetched = client.namespaces.get(name)
    # Reading one namespace adds what it stores; nothing else differs from the creation answer.
    assert fetched.pop("usage") == {
        "files": {"count": 0, "bytes": 0},
        "kv": {"count": 0, "bytes": 0},
    }
    assert fetched == created
    assert "usage" not in created

    updated = client.namespaces.update(name, description="changed")
    assert updated["description"] == "changed"
    assert updated["full_name"] == "ACME Corp"
    assert updated["updated_at"] > created["updated_at"]
    assert client.namespaces.get(name)["description"] == "changed"

    client.namespaces.delete(name)
    with pytest.raises(ObpApiError) as missing:
        client.namespaces.get(name)
    assert missing.value.status == 404


def test_create_answers_201_with_location(client: Client) -> None:
    name = _unique()
    response = client.request("POST", "/api/v1/namespaces", json={"name": name})
    assert response.status_code == 201
    assert response.headers["location"] == f"/api/v1/namespaces/{name}"


def test_rejects_duplicate_name_with_409_and_keeps_the_first(client: Client) -> None:
    name = _unique()
    client.namespaces.create(name, full_name="first")
    with pytest.raises(ObpApiError) as duplicate:
        client.namespaces.create(name, full_name="second")
    assert duplicate.value.status == 409
    assert duplicate.value.problem["detail"] == f"namespace {name!r} already exists"
    assert client.namespaces.get(name)["full_name"] == "first"


@pytest.mark.parametrize(
    "name", ["Acme", "-acme", "acme-", "ac_me", "a" * 64, "acme.corp", "ümlaut", ""]
)
def test_rejects_invalid_name_with_422_naming_field_and_pattern(client: Client, name: str) -> None:
    with pytest.raises(ObpApiError) as invalid:
        client.namespaces.create(name)
    problem = invalid.value.problem
    assert invalid.value.status == 422
    assert problem["errors"][0]["loc"][-1] == "name"
    assert (
        NAMESPACE_PATTERN in problem["errors"][0]["msg"]
        or "characters" in problem["errors"][0]["msg"]
    )
    assert all(ns["name"] != name for ns in client.namespaces.iterate())


@pytest.mark.parametrize("name", ["global", "system"])
def test_rejects_reserved_names_with_422(client: Client, name: str) -> None:
    with pytest.raises(ObpApiError) as reserved:
        client.namespaces.create(name)
    assert reserved.value.status == 422
    assert "reserved" in reserved.value.problem["errors"][0]["msg"]


def test_update_cannot_rename_and_changes_nothing(client: Client) -> None:
    name = _unique()
    before = client.namespaces.create(name, full_name="kept")
    with pytest.raises(ObpApiError) as refused:
        client.request(
            "PATCH", f"/api/v1/namespaces/{name}", json={"name": "other", "full_name": "x"}
        )
    assert refused.value.status == 422
    assert refused.value.problem["errors"][0]["loc"] == ["body", "name"]
    after = client.namespaces.get(name)
    del after["usage"]
    assert after == before


@pytest.mark.parametrize(
    ("field", "value"), [("description", "nul \x00 byte"), ("full_name", "tab\there")]
)
def test_rejects_control_characters_in_texts_with_422(
    client: Client, field: str, value: str
) -> None:
    name = _unique()
    with pytest.raises(ObpApiError) as invalid:
        client.request("POST", "/api/v1/namespaces", json={"name": name, field: value})
    assert invalid.value.status == 422
    assert invalid.value.problem["errors"][0]["loc"] == [field]
    with pytest.raises(ObpApiError):
        client.namespaces.get(name)


def test_update_of_missing_namespace_is_404(client: Client) -> None:
    with pytest.raises(ObpApiError) as missing:
        client.namespaces.update(_unique("missing"), full_name="x")
    assert missing.value.status == 404


def test_delete_is_idempotent(client: Client) -> None:
    name = _unique()
    client.namespaces.create(name)
    assert client.request("DELETE", f"/api/v1/namespaces/{name}").status_code == 204
    assert client.request("DELETE", f"/api/v1/namespaces/{name}").status_code == 204
    assert client.request("DELETE", "/api/v1/namespaces/Not-Valid").status_code == 204


def test_list_pages_through_every_namespace_with_cursors(client: Client) -> None:
    prefix = _unique("page")
    names = sorted(f"{prefix}-{index:02d}" for index in range(23))
    for name in names:
        client.namespaces.create(name)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.namespaces.list(q=prefix, limit=10, cursor=cursor)
        assert len(page["items"]) <= 10
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    assert pages == 3


def test_search_matches_name_full_name_and_description_case_insensitively(client: Client) -> None:
    token = secrets.token_hex(3)
    by_name = client.namespaces.create(f"q{token}-n")["name"]
    by_full_name = client.namespaces.create(_unique(), full_name=f"Big {token.upper()} Ltd")["name"]
    by_text = client.namespaces.create(_unique(), description=f"about {token}")["name"]
    found = {ns["name"] for ns in client.namespaces.iterate(q=token)}
    assert found == {by_name, by_full_name, by_text}


def test_search_treats_like_wildcards_literally(client: Client) -> None:
    client.namespaces.create(_unique(), description="100% literal")
    assert [ns["description"] for ns in client.namespaces.iterate(q="0% lit")] == ["100% literal"]
    assert list(client.namespaces.iterate(q="%_%_%_%_%_%_%_%_%")) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("cursor=garbage", "cursor")],
)
def test_rejects_bad_paging_parameters_with_422(client: Client, query: str, field: str) -> None:
    with pytest.raises(ObpApiError) as invalid:
        client.request("GET", f"/api/v1/namespaces?{query}")
    assert invalid.value.status == 422
    assert invalid.value.problem["errors"][0]["loc"] == ["query", field]


def test_every_error_is_problem_json_with_a_request_id(
    client: Client, server: ServerProcess
) -> None:
    anonymous = httpx.get(f"{client.base_url}/api/v1/namespaces")
    raw = httpx.Client(base_url=client.base_url, headers=server.admin_headers())
    with raw:
        cases = [
            anonymous,
            raw.get("/api/v1/namespaces/does-not-exist"),
            raw.get("/no/such/route"),
            raw.put("/api/v1/namespaces/x"),
            raw.post(
                "/api/v1/namespaces", content=b"name=x", headers={"content-type": "text/plain"}
            ),
            raw.post(
                "/api/v1/namespaces", content=b"{", headers={"content-type": "application/json"}
            ),
            raw.post("/api/v1/namespaces", json={"name": "x" * 2_000_000}),
        ]
    assert [r.status_code for r in cases] == [401, 404, 404, 405, 415, 422, 413]
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    for response in cases:
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == response.status_code
        assert body["title"]
        assert body["detail"]
        assert body["request_id"] == response.headers["x-request-id"]


def test_readyz_reports_every_backend(client: Client) -> None:
    report = client.ready()
    assert report["status"] == "ready"
    assert set(report["checks"]) == {"database", "cache", "bus", "vault", "blobs"}
    assert all(check["status"] == "ok" for check in report["checks"].values())


def test_logs_are_json_lines_carrying_the_request_id(client: Client, server: ServerProcess) -> None:
    response = client.request("GET", "/api/v1/namespaces", headers={"x-request-id": "log-probe-1"})
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [
            json.loads(line)
            for line in server.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        matching = [r for r in records if r.get("request_id") == "log-probe-1"]
        if matching:
            break
        time.sleep(0.1)
    assert matching[0]["event"] == "request"
    assert matching[0]["status"] == 200
    assert matching[0]["route"] == "/api/v1/namespaces"

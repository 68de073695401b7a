"""Secrets end to end: the SDK against a real `obp serve`, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from obp.client import Client, ObpApiError
from tests.e2e.vault_fixtures import (
    Deployment,
    bearer,
    deployment_fixture,  # noqa: F401  (the `deployment` fixture)
    purge_held_back,
    sdk_fixture,  # noqa: F401  (the `sdk` fixture)
    unique,
    wait_for,
)

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
MAX_VALUE_BYTES = 64 * 1024


def _namespace(client: Client) -> str:
    name = unique("sec")
    client.namespaces.create(name)
    return name


def _secrets_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return base if name is None else f"{base}/{name}"


def _problem(raised: pytest.ExceptionInfo[ObpApiError], status: int) -> dict[str, Any]:
    assert raised.value.status == status, raised.value.problem
    return raised.value.problem


def test_put_answers_201_then_200_with_the_next_version_and_never_echoes_the_value(
    sdk: Client,
) -> None:
    ns = _namespace(sdk)
    first = sdk.request("PUT", _secrets_path(ns, "db.password"), json={"value": "hunter2-first"})
    assert first.status_code == 201
    assert first.json()["version"] == 1
    assert first.json()["name"] == "db.password"
    second = sdk.request("PUT", _secrets_path(ns, "db.password"), json={"value": "hunter2-next"})
    assert second.status_code == 200
    assert second.json()["version"] == 2
    third = sdk.secrets.set(ns, "db.password", "hunter2-third")
    assert third["version"] == 3
    for response in (first, second):
        assert "value" not in response.json()
        assert "hunter2" not in response.text
    assert set(third) == {"name", "version", "description", "updated_at"}


def test_get_returns_the_newest_value_and_an_older_version_on_request(sdk: Client) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "api-key", "value-one", description="the API key")
    sdk.secrets.set(ns, "api-key", "value-two")
    newest = sdk.secrets.get(ns, "api-key")
    assert newest["value"] == "value-two"
    assert newest["version"] == 2
    assert newest["name"] == "api-key"
    old = sdk.secrets.get(ns, "api-key", version=1)
    assert (old["value"], old["version"]) == ("value-one", 1)
    assert old["updated_at"] < newest["updated_at"]
    with pytest.raises(ObpApiError) as missing:
        sdk.secrets.get(ns, "api-key", version=3)
    assert "version 3" in str(_problem(missing, 404)["detail"])


def test_values_keep_unicode_and_empty_strings_exactly(sdk: Client) -> None:
    ns = _namespace(sdk)
    for value in ["", "ümlaut ✓ 🗝", "line one\nline two\n", " padded "]:
        sdk.secrets.set(ns, "text", value)
        assert sdk.secrets.get(ns, "text")["value"] == value


def test_list_shows_metadata_and_never_a_value(sdk: Client) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "alpha", "list-canary-a", description="first")
    sdk.secrets.set(ns, "alpha", "list-canary-a2")
    sdk.secrets.set(ns, "beta", "list-canary-b")
    response = sdk.request("GET", _secrets_path(ns))
    assert "list-canary" not in response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert [(item["name"], item["version"]) for item in body["items"]] == [
        ("alpha", 2),
        ("beta", 1),
    ]
    assert body["items"][0]["description"] == "first"
    for item in body["items"]:
        assert set(item) == {"name", "version", "description", "updated_at"}


def test_list_filters_by_prefix_case_sensitively(sdk: Client) -> None:
    ns = _namespace(sdk)
    for name in ["db.main", "db.replica", "DB.upper", "dbx", "smtp"]:
        sdk.secrets.set(ns, name, "v")
    assert [s["name"] for s in sdk.secrets.iterate(ns, prefix="db.")] == ["db.main", "db.replica"]
    assert [s["name"] for s in sdk.secrets.iterate(ns, prefix="db")] == [
        "db.main",
        "db.replica",
        "dbx",
    ]
    assert [s["name"] for s in sdk.secrets.iterate(ns, prefix="nothing")] == []


def test_list_pages_through_every_secret_with_cursors(sdk: Client) -> None:
    ns = _namespace(sdk)
    names = sorted(f"page-{index:02d}" for index in range(12))
    for name in names:
        sdk.secrets.set(ns, name, "v1")
    sdk.secrets.set(ns, "page-03", "v2")  # a second version is still one entry
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = sdk.secrets.list(ns, limit=5, cursor=cursor)
        assert len(page["items"]) <= 5
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    assert pages == 3


def test_delete_is_idempotent_and_removes_every_version(sdk: Client) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "gone", "v1")
    sdk.secrets.set(ns, "gone", "v2")
    assert sdk.request("DELETE", _secrets_path(ns, "gone")).status_code == 204
    assert sdk.request("DELETE", _secrets_path(ns, "gone")).status_code == 204
    for version in (None, 1, 2):
        with pytest.raises(ObpApiError) as missing:
            sdk.secrets.get(ns, "gone", version=version)
        _problem(missing, 404)
    assert list(sdk.secrets.iterate(ns)) == []
    assert sdk.secrets.set(ns, "gone", "again")["version"] == 1


def test_description_carries_over_when_omitted_and_changes_when_given(sdk: Client) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "smtp", "v1", description="mail relay")
    assert sdk.secrets.set(ns, "smtp", "v2")["description"] == "mail relay"
    assert sdk.secrets.get(ns, "smtp")["description"] == "mail relay"
    assert sdk.secrets.set(ns, "smtp", "v3", description="")["description"] == ""
    assert sdk.secrets.set(ns, "smtp", "v4")["description"] == ""
    assert sdk.secrets.get(ns, "smtp", version=1)["description"] == "mail relay"


@pytest.mark.parametrize(
    "name", ["bad name", ".hidden", "-dash", "a" * 129, "semi;colon", "ümlaut", "a/b"]
)
def test_rejects_invalid_names_with_422_naming_name_and_pattern(sdk: Client, name: str) -> None:
    ns = _namespace(sdk)
    calls: list[Callable[[], object]] = [
        lambda: sdk.secrets.set(ns, name, "v"),
        lambda: sdk.secrets.get(ns, name),
    ]
    for call in calls:
        with pytest.raises(ObpApiError) as invalid:
            call()
        problem = _problem(invalid, 422)
        errors = problem["errors"]
        assert errors[0]["loc"][-1] == "name"
        assert NAME_PATTERN in errors[0]["msg"]
    assert list(sdk.secrets.iterate(ns)) == []


def test_accepts_names_at_the_limits(sdk: Client) -> None:
    ns = _namespace(sdk)
    for name in ["a", "_", "9", "A" * 128, "x.y-z_0"]:
        assert sdk.secrets.set(ns, name, "v")["name"] == name
        assert sdk.secrets.get(ns, name)["value"] == "v"


def test_rejects_a_value_over_64_kib_with_422_naming_value(sdk: Client) -> None:
    ns = _namespace(sdk)
    assert sdk.secrets.set(ns, "big", "x" * MAX_VALUE_BYTES)["version"] == 1
    # 32769 two-byte characters: under the limit in characters, over it in UTF-8 bytes.
    for value in ["x" * (MAX_VALUE_BYTES + 1), "é" * (MAX_VALUE_BYTES // 2 + 1)]:
        with pytest.raises(ObpApiError) as too_big:
            sdk.secrets.set(ns, "big", value)
        problem = _problem(too_big, 422)
        errors = problem["errors"]
        assert errors[0]["loc"][-1] == "value"
        assert str(MAX_VALUE_BYTES) in errors[0]["msg"]
    assert sdk.secrets.get(ns, "big")["version"] == 1


def test_unknown_namespace_is_404_for_put_get_and_list(sdk: Client) -> None:
    missing = unique("missing")
    calls: list[Callable[[], object]] = [
        lambda: sdk.secrets.set(missing, "s", "v"),
        lambda: sdk.secrets.get(missing, "s"),
        lambda: sdk.secrets.list(missing),
    ]
    for call in calls:
        with pytest.raises(ObpApiError) as raised:
            call()
        _problem(raised, 404)


def test_rejects_extra_fields_and_missing_value_with_422(sdk: Client) -> None:
    ns = _namespace(sdk)
    for body, field in (({"value": "v", "version": 7}, "version"), ({"description": "d"}, "value")):
        with pytest.raises(ObpApiError) as invalid:
            sdk.request("PUT", _secrets_path(ns, "s"), json=body)
        errors = _problem(invalid, 422)["errors"]
        assert errors[0]["loc"][-1] == field
    assert list(sdk.secrets.iterate(ns)) == []


def test_rejects_a_body_that_is_not_json_with_415_or_422(sdk: Client) -> None:
    ns = _namespace(sdk)
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens)) as raw:
        text = raw.put(
            _secrets_path(ns, "s"), content=b"value=v", headers={"content-type": "text/plain"}
        )
        broken = raw.put(
            _secrets_path(ns, "s"), content=b"{", headers={"content-type": "application/json"}
        )
    assert text.status_code == 415
    assert broken.status_code == 422
    for response in (text, broken):
        assert response.headers["content-type"] == "application/problem+json"
    assert list(sdk.secrets.iterate(ns)) == []


def test_every_secrets_call_without_a_token_is_401_and_changes_nothing(sdk: Client) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "guarded", "anonymous-must-not-see")
    with httpx.Client(base_url=sdk.base_url) as anonymous:
        responses = [
            anonymous.get(_secrets_path(ns, "guarded")),
            anonymous.get(_secrets_path(ns)),
            anonymous.put(_secrets_path(ns, "guarded"), json={"value": "overwritten"}),
            anonymous.delete(_secrets_path(ns, "guarded")),
        ]
    for response in responses:
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "anonymous-must-not-see" not in response.text
    kept = sdk.secrets.get(ns, "guarded")
    assert (kept["value"], kept["version"]) == ("anonymous-must-not-see", 1)


def test_a_secret_of_one_namespace_is_invisible_in_another(sdk: Client) -> None:
    tenant_a, tenant_b = _namespace(sdk), _namespace(sdk)
    sdk.secrets.set(tenant_a, "shared-name", "belongs-to-a")
    with pytest.raises(ObpApiError) as hidden:
        sdk.secrets.get(tenant_b, "shared-name")
    assert "belongs-to-a" not in str(_problem(hidden, 404))
    with pytest.raises(ObpApiError) as hidden_version:
        sdk.secrets.get(tenant_b, "shared-name", version=1)
    _problem(hidden_version, 404)
    assert sdk.secrets.list(tenant_b) == {"items": [], "next_cursor": None}
    # B writing the same name starts its own history and leaves A's alone.
    assert sdk.secrets.set(tenant_b, "shared-name", "belongs-to-b")["version"] == 1
    sdk.secrets.delete(tenant_b, "shared-name")
    assert sdk.secrets.get(tenant_a, "shared-name")["value"] == "belongs-to-a"


def test_rotations_keep_every_version_readable_even_after_a_restart(
    sdk: Client, deployment: Deployment
) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "rotated", "before-rotation")
    first_key = sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/data-key/rotate").json()
    sdk.secrets.set(ns, "rotated", "after-data-key-rotation")
    second_key = sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/data-key/rotate").json()
    assert first_key["key_id"] != second_key["key_id"]
    before = sdk.request("GET", "/api/v1/vault").json()
    rotation = sdk.request("POST", "/api/v1/vault/root/rotate").json()
    assert rotation["root_version"] != before["root_version"]
    assert rotation["rewrapped"] >= 3  # this namespace alone has three data keys
    assert before["root_version"] in rotation["destroyed"]
    assert sdk.request("GET", "/api/v1/vault").json()["root_version"] == rotation["root_version"]
    sdk.secrets.set(ns, "rotated", "after-root-rotation")

    expected = {1: "before-rotation", 2: "after-data-key-rotation", 3: "after-root-rotation"}
    for version, value in expected.items():
        assert sdk.secrets.get(ns, "rotated", version=version)["value"] == value

    deployment.restart()
    with deployment.client() as fresh:
        for version, value in expected.items():
            assert fresh.secrets.get(ns, "rotated", version=version)["value"] == value
        assert fresh.secrets.set(ns, "rotated", "after-restart")["version"] == 4
        assert fresh.secrets.get(ns, "rotated")["value"] == "after-restart"


def _keys_of(deployment: Deployment, ns: str) -> set[str]:
    return {
        row[0]
        for row in deployment.query("SELECT key_id FROM vault_data_keys WHERE namespace = ?", ns)
    }


def _rows_of(deployment: Deployment, ns: str) -> dict[str, int]:
    counts = {}
    for table in ("vault_data_keys", "vault_key_pairs", "secrets"):
        sql = f"SELECT count(*) FROM {table} WHERE namespace = ?"  # noqa: S608  (constant names)
        counts[table] = int(deployment.query(sql, ns)[0][0])
    return counts


def test_deleting_a_namespace_shreds_its_keys_and_secrets(
    sdk: Client, deployment: Deployment
) -> None:
    ns = _namespace(sdk)
    sdk.secrets.set(ns, "doomed", "shred-me-1")
    sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/data-key/rotate")
    sdk.secrets.set(ns, "doomed", "shred-me-2")
    assert sdk.request("POST", f"/api/v1/namespaces/{ns}/vault/keys/rotate").status_code == 201
    old_keys = _keys_of(deployment, ns)
    assert len(old_keys) == 2
    assert _rows_of(deployment, ns) == {"vault_data_keys": 2, "vault_key_pairs": 1, "secrets": 2}

    sdk.namespaces.delete(ns)
    wait_for(
        lambda: (
            _rows_of(deployment, ns) == {"vault_data_keys": 0, "vault_key_pairs": 0, "secrets": 0}
        ),
        what=f"the purge of namespace {ns}",
    )

    sdk.namespaces.create(ns)
    for version in (None, 1, 2):
        with pytest.raises(ObpApiError) as gone:
            sdk.secrets.get(ns, "doomed", version=version)
        assert "shred-me" not in str(_problem(gone, 404))
    assert sdk.secrets.list(ns) == {"items": [], "next_cursor": None}
    assert sdk.request("GET", f"/api/v1/namespaces/{ns}/vault/keys").json() == {"keys": []}

    # The re-created namespace starts afresh, with a key none of the old data was sealed with.
    assert sdk.secrets.set(ns, "doomed", "new-life")["version"] == 1
    assert sdk.secrets.get(ns, "doomed")["value"] == "new-life"
    assert not _keys_of(deployment, ns) & old_keys


def test_a_namespace_recreated_at_once_keeps_the_secrets_written_after(
    sdk: Client, deployment: Deployment
) -> None:
    """Secrets written to a re-created namespace must survive the purge of its former self.

    The purge of a deleted namespace runs later, from its event; a secret written in between
    must not be sealed with a data key that the purge then destroys. PostgreSQL holds the
    purge back with a row lock (deterministic); SQLite relies on the natural race, repeated.
    """
    namespaces = [_namespace(sdk) for _ in range(30 if deployment.engine == "sqlite" else 2)]
    old_keys: dict[str, set[str]] = {}
    for ns in namespaces:
        sdk.secrets.set(ns, "s", "old")
        old_keys[ns] = _keys_of(deployment, ns)
        with purge_held_back(deployment, ns):
            sdk.namespaces.delete(ns)
            sdk.namespaces.create(ns)
            assert sdk.secrets.set(ns, "s", "new")["version"] >= 1

    def purged() -> bool:
        return all(not _keys_of(deployment, ns) & old_keys[ns] for ns in namespaces)

    wait_for(purged, what="the purge of the deleted namespaces")
    lost = []
    for ns in namespaces:
        try:
            assert sdk.secrets.get(ns, "s")["value"] == "new"
        except ObpApiError as exc:
            lost.append(f"{ns}: {exc}")
    assert not lost, f"{len(lost)} of {len(namespaces)} acknowledged secrets lost; {lost[0]}"

"""The key-value store end to end: HTTP against a real `obp serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from obp.client import Client, ObpApiError
from tests.e2e.vault_fixtures import (
    Deployment,
    bearer,
    deployment_fixture,  # noqa: F401  (the `deployment` fixture)
    sdk_fixture,  # noqa: F401  (the `sdk` fixture)
    unique,
    wait_for,
)

MiB = 1024 * 1024
PROBLEM = "application/problem+json"


@pytest.fixture
def raw(sdk: Client) -> Iterator[httpx.Client]:
    """Plain HTTP as the global admin, for status codes and headers."""
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens), timeout=60.0) as http:
        yield http


@pytest.fixture
def ns(sdk: Client) -> str:
    """A namespace of the test's own."""
    name = unique("kv")
    sdk.namespaces.create(name)
    return name


def _kv(ns: str, key: str | None = None) -> str:
    base = f"/api/v1/namespaces/{ns}/kv"
    return base if key is None else f"{base}/{key}"


def _etag(content_type: str, value: bytes) -> str:
    return '"' + hashlib.sha256(content_type.encode() + b"\x00" + value).hexdigest()[:32] + '"'


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def test_put_answers_201_then_200_with_the_etag_and_metadata_never_the_value(
    raw: httpx.Client, ns: str
) -> None:
    first = raw.put(_kv(ns, "doc"), content=b"first-value", headers={"Content-Type": "text/plain"})
    assert first.status_code == 201, first.text
    assert first.headers["etag"] == _etag("text/plain", b"first-value")
    assert first.json() == {
        "key": "doc",
        "etag": first.headers["etag"],
        "size": 11,
        "content_type": "text/plain",
        "version": 1,
        "expires_at": None,
    }
    second = raw.put(_kv(ns, "doc"), content=b"second", headers={"X-OBP-TTL": "3600"})
    assert second.status_code == 200, second.text
    body = second.json()
    assert (body["version"], body["content_type"]) == (2, "application/octet-stream")
    assert body["expires_at"] is not None
    assert "value" not in second.text


def test_get_returns_the_bytes_exactly_with_type_etag_and_expiry_headers(
    raw: httpx.Client, ns: str
) -> None:
    value = bytes(range(256)) * 3
    raw.put(_kv(ns, "bin"), content=value, headers={"Content-Type": "image/x-test"})
    raw.put(_kv(ns, "text"), content="ü ✓".encode(), headers={"Content-Type": "text/plain"})
    for _ in range(2):  # from the database, then from the cache
        got = raw.get(_kv(ns, "bin"))
        assert got.status_code == 200
        assert got.content == value
        assert got.headers["content-type"] == "image/x-test"
        assert got.headers["etag"] == _etag("image/x-test", value)
        assert "x-obp-expires-at" not in got.headers
    text = raw.get(_kv(ns, "text"))
    assert text.headers["content-type"] == "text/plain"  # no charset appended
    assert text.content == "ü ✓".encode()
    raw.put(_kv(ns, "brief"), content=b"v", headers={"X-OBP-TTL": "600"})
    expires = raw.get(_kv(ns, "brief")).headers["x-obp-expires-at"]
    assert expires.endswith("Z")
    assert expires == raw.head(_kv(ns, "brief")).headers["x-obp-expires-at"]


def test_head_answers_the_headers_with_content_length_and_no_body(
    raw: httpx.Client, ns: str
) -> None:
    raw.put(_kv(ns, "h"), content=b"12345", headers={"Content-Type": "application/json"})
    head = raw.head(_kv(ns, "h"))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "5"
    assert head.headers["content-type"] == "application/json"
    assert head.headers["etag"] == _etag("application/json", b"12345")
    assert raw.head(_kv(ns, "missing")).status_code == 404


def test_a_get_with_the_current_etag_answers_304_without_a_body(raw: httpx.Client, ns: str) -> None:
    etag = raw.put(_kv(ns, "c"), content=b"cached").headers["etag"]
    for header in (etag, f'"other", {etag}', "*", f"W/{etag}"):
        again = raw.get(_kv(ns, "c"), headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    assert raw.get(_kv(ns, "c"), headers={"If-None-Match": '"other"'}).status_code == 200


def test_conditional_writes_answer_412_and_change_nothing(raw: httpx.Client, ns: str) -> None:
    etag = raw.put(_kv(ns, "cas"), content=b"one").headers["etag"]
    refused = [
        raw.put(_kv(ns, "cas"), content=b"x", headers={"If-Match": '"stale"'}),
        raw.put(_kv(ns, "cas"), content=b"x", headers={"If-None-Match": "*"}),
        raw.put(_kv(ns, "absent"), content=b"x", headers={"If-Match": "*"}),
        raw.delete(_kv(ns, "cas"), headers={"If-Match": '"stale"'}),
        raw.get(_kv(ns, "cas"), headers={"If-Match": '"stale"'}),
    ]
    for response in refused:
        assert "Precondition" in _problem(response, 412)["title"]
    assert raw.get(_kv(ns, "cas")).content == b"one"
    assert raw.get(_kv(ns, "absent")).status_code == 404

    swapped = raw.put(_kv(ns, "cas"), content=b"two", headers={"If-Match": etag})
    assert swapped.status_code == 200, swapped.text
    created = raw.put(_kv(ns, "new"), content=b"n", headers={"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    assert (
        raw.delete(_kv(ns, "cas"), headers={"If-Match": swapped.headers["etag"]}).status_code == 204
    )


def test_a_value_over_16_mib_is_413_with_or_without_content_length(
    raw: httpx.Client, sdk: Client, ns: str
) -> None:
    limit = 16 * MiB
    exact = raw.put(_kv(ns, "big"), content=b"\x01" * limit)
    assert exact.status_code == 201, exact.text

    def chunks() -> Iterator[bytes]:
        for _ in range(17):
            yield b"\x03" * MiB

    # A connection of their own: the server answers 413 before reading the whole body, and
    # without `Connection: close` a pooled connection can be reused just as it closes.
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens), timeout=60.0) as http:
        declared = http.put(_kv(ns, "big"), content=b"\x02" * (limit + 1))
        assert str(limit) in _problem(declared, 413)["detail"]
    with httpx.Client(base_url=sdk.base_url, headers=bearer(sdk.tokens), timeout=60.0) as http:
        _problem(http.put(_kv(ns, "big"), content=chunks()), 413)
    stored = raw.get(_kv(ns, "big"))
    assert stored.content == b"\x01" * limit


@pytest.mark.parametrize(
    ("method", "path", "headers", "loc"),
    [
        ("PUT", "a%01b", {}, ["path", "key"]),
        ("GET", "tab%09key", {}, ["path", "key"]),
        ("PUT", "k" * 1025, {}, ["path", "key"]),
        ("PUT", "%C3%A9" * 513, {}, ["path", "key"]),
        ("PUT", "k", {"X-OBP-TTL": "0"}, ["header", "x-obp-ttl"]),
        ("PUT", "k", {"X-OBP-TTL": "1.5"}, ["header", "x-obp-ttl"]),
        ("PUT", "k", {"X-OBP-TTL": "315360001"}, ["header", "x-obp-ttl"]),
        ("PUT", "k", {"If-Match": "no-quotes"}, ["header", "if-match"]),
        ("DELETE", "k", {"If-Match": '"a" "b"'}, ["header", "if-match"]),
        ("GET", "k", {"If-None-Match": "W/"}, ["header", "if-none-match"]),
        ("PUT", "k", {"Content-Type": "not a type"}, ["header", "content-type"]),
    ],
)
def test_invalid_input_is_a_422_problem_naming_the_field_and_what_is_accepted(
    raw: httpx.Client, ns: str, method: str, path: str, headers: dict[str, str], loc: list[str]
) -> None:
    response = raw.request(method, _kv(ns, path), content=b"v", headers=headers)
    problem = _problem(response, 422)
    assert problem["errors"][0]["loc"] == loc
    assert problem["errors"][0]["msg"]
    assert raw.get(_kv(ns)).json()["items"] == []


def test_listing_parameters_are_validated_naming_them(raw: httpx.Client, ns: str) -> None:
    for params, loc in (
        ({"prefix": "a\x00"}, ["query", "prefix"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ):
        problem = _problem(raw.get(_kv(ns), params=params), 422)
        assert problem["errors"][0]["loc"] == loc


KEYS = ["a", "a/b/c", "a/ü", "a?b#c", "100%", " spaced ", "..", "/lead", "😀/x", "中文", "é"]


def test_keys_with_slashes_unicode_and_reserved_characters_round_trip(sdk: Client, ns: str) -> None:
    for key in KEYS:
        assert sdk.kv.set(ns, key, f"value of {key}")["key"] == key
    for key in KEYS:
        found = sdk.kv.get(ns, key)
        assert found is not None
        assert found.value == f"value of {key}".encode()
        assert found.content_type == "text/plain; charset=utf-8"
    assert [item["key"] for item in sdk.kv.iterate(ns)] == sorted(KEYS)


def test_listing_pages_through_keys_in_code_point_order_under_a_prefix(
    sdk: Client, ns: str
) -> None:
    keys = [f"orders/{index:02d}" for index in range(7)] + ["orders/ü", "orders/😀", "other"]
    for key in reversed(keys):
        sdk.kv.set(ns, key, b"x" * len(key))
    seen: list[str] = []
    cursor = None
    while True:
        page = sdk.kv.list(ns, prefix="orders/", limit=3, cursor=cursor)
        assert len(page["items"]) <= 3
        seen += [item["key"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(k for k in keys if k.startswith("orders/"))
    item = sdk.kv.list(ns, prefix="other")["items"][0]
    assert set(item) == {
        "key", "size", "content_type", "etag", "version", "updated_at", "expires_at"
    }  # fmt: skip
    assert item["size"] == 5


def test_a_value_with_a_ttl_is_gone_once_it_expires(sdk: Client, ns: str) -> None:
    sdk.kv.set(ns, "short", "lived", ttl=1)
    sdk.kv.set(ns, "long", "lived")
    assert sdk.kv.get(ns, "short") is not None
    time.sleep(1.3)
    with pytest.raises(ObpApiError) as gone:
        sdk.kv.get(ns, "short")
    assert gone.value.status == 404
    assert [item["key"] for item in sdk.kv.iterate(ns)] == ["long"]
    assert sdk.kv.set(ns, "short", "again", if_absent=True)["created"] is True


def test_delete_answers_204_and_is_idempotent(raw: httpx.Client, ns: str) -> None:
    raw.put(_kv(ns, "gone"), content=b"v")
    assert raw.delete(_kv(ns, "gone")).status_code == 204
    assert raw.delete(_kv(ns, "gone")).status_code == 204
    assert raw.delete(_kv(ns, "never")).status_code == 204
    _problem(raw.get(_kv(ns, "gone")), 404)
    again = raw.put(_kv(ns, "gone"), content=b"back")
    assert (again.status_code, again.json()["version"]) == (201, 3)


def test_every_call_without_a_token_is_401_and_changes_nothing(
    raw: httpx.Client, sdk: Client, ns: str
) -> None:
    raw.put(_kv(ns, "guarded"), content=b"anonymous-must-not-see")
    with httpx.Client(base_url=sdk.base_url) as anonymous:
        responses = [
            anonymous.get(_kv(ns, "guarded")),
            anonymous.head(_kv(ns, "guarded")),
            anonymous.get(_kv(ns)),
            anonymous.put(_kv(ns, "guarded"), content=b"overwritten"),
            anonymous.delete(_kv(ns, "guarded")),
        ]
    for response in responses:
        assert response.status_code == 401, response.text
        assert "anonymous-must-not-see" not in response.text
    assert raw.get(_kv(ns, "guarded")).content == b"anonymous-must-not-see"


def test_an_unknown_namespace_is_404(raw: httpx.Client) -> None:
    missing = unique("missing")
    for response in (
        raw.put(_kv(missing, "k"), content=b"v"),
        raw.get(_kv(missing, "k")),
        raw.get(_kv(missing)),
        raw.delete(_kv(missing, "k")),
    ):
        _problem(response, 404)


def _rows(deployment: Deployment, ns: str) -> int:
    found = deployment.query("SELECT count(*) FROM kv_entries WHERE namespace = ?", ns)
    return int(found[0][0])


def test_deleting_a_namespace_purges_its_keys_and_a_recreated_one_starts_empty(
    sdk: Client, deployment: Deployment, ns: str
) -> None:
    for index in range(5):
        sdk.kv.set(ns, f"doomed/{index}", "old-incarnation")
    sdk.kv.delete(ns, "doomed/0")
    assert sdk.namespaces.get(ns)["usage"]["kv"] == {"count": 4, "bytes": 4 * 15}
    assert _rows(deployment, ns) == 5
    sdk.namespaces.delete(ns)
    wait_for(lambda: _rows(deployment, ns) == 0, what=f"the purge of namespace {ns}")

    sdk.namespaces.create(ns)
    assert list(sdk.kv.iterate(ns)) == []
    with pytest.raises(ObpApiError) as gone:
        sdk.kv.get(ns, "doomed/1")
    assert gone.value.status == 404
    assert sdk.kv.set(ns, "doomed/1", "new")["version"] == 1

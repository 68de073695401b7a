"""API keys and refresh tokens: their format, digests and constant-time comparison."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from obp.services.iam import opaque


def test_api_key_format_and_digest() -> None:
    key_id, key, stored = opaque.new_api_key()

    assert re.fullmatch(r"[0-9a-f]{16}", key_id)
    prefix, shown_id, secret = key.split("_", 2)
    assert (prefix, shown_id) == ("obp", key_id)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert stored == opaque.digest(key)
    assert secret not in stored


def test_api_keys_are_unique() -> None:
    made = [opaque.new_api_key() for _ in range(200)]

    assert len({key_id for key_id, _, _ in made}) == 200
    assert len({key for _, key, _ in made}) == 200


def test_parse_api_key_round_trips() -> None:
    key_id, key, _ = opaque.new_api_key()

    assert opaque.parse_api_key(key) == (key_id, key)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "obp",
        "obp__",
        "obp_0123456789abcdef",
        "obp_0123456789abcdef_tooshort",
        "obp_0123456789ABCDEF_" + "a" * 43,  # upper-case id
        "obp_0123456789abcde_" + "a" * 43,  # 15-character id
        "xyz_0123456789abcdef_" + "a" * 43,
        "obp_0123456789abcdef_" + "a" * 42 + "!",
        "obp_0123456789abcdef_" + "a" * 44,
        "obp_0123456789abcdef_" + "a" * 43 + "\n",
        "obprt_" + "a" * 43,  # a refresh token is not an API key
    ],
)
def test_parse_api_key_refuses_malformed(candidate: str) -> None:
    assert opaque.parse_api_key(candidate) is None


def test_a_secret_with_underscores_still_parses() -> None:
    secret = "_a-b_" + "c" * 38
    key = f"obp_0123456789abcdef_{secret}"

    assert opaque.parse_api_key(key) == ("0123456789abcdef", key)


def test_refresh_token_format_and_digest() -> None:
    token, stored = opaque.new_refresh_token()

    assert token.startswith("obprt_")
    assert len(base64.urlsafe_b64decode(token.removeprefix("obprt_") + "=")) == 32
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert opaque.is_refresh_token(token)
    assert not opaque.is_refresh_token(token[:-1])
    assert not opaque.is_refresh_token(opaque.new_api_key()[1])
    assert opaque.new_refresh_token()[0] != token


def test_matches_compares_with_the_stored_digest() -> None:
    _, key, stored = opaque.new_api_key()

    assert opaque.matches(key, stored)
    assert not opaque.matches(key[:-1] + ("A" if key[-1] != "A" else "B"), stored)
    assert not opaque.matches(key, "")


def test_constant_time_equals() -> None:
    assert opaque.constant_time_equals("abc", "abc")
    assert not opaque.constant_time_equals("abc", "abd")
    assert not opaque.constant_time_equals("abc", "abcd")
    assert not opaque.constant_time_equals("é", "e")  # non-ASCII is compared, not refused

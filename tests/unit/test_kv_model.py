"""Key-value rules without I/O: keys, prefixes and their successor, etags, TTLs, conditions."""

from __future__ import annotations

import hashlib
import random

import pytest

from obp.kernel.errors import InvalidInput, PreconditionFailed
from obp.kernel.etags import parse_etags
from obp.services.kv.model import (
    KEY_RULE,
    MAX_TTL_SECONDS,
    KvEntry,
    Preconditions,
    check_content_type,
    check_key,
    check_prefix,
    etag_of,
    parse_ttl,
    successor,
)


def _loc(raised: pytest.ExceptionInfo[InvalidInput]) -> tuple[str | int, ...]:
    (error,) = raised.value.errors
    return error.loc


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "orders/42",
        "/leading/and/trailing/",
        "a//b",
        "..",
        "with space and ?#%&=+",
        "ümlaut ✓ 中文 😀",
        "\u00a0no-break space",
        "k" * 1024,
        "é" * 512,
        "😀" * 256,
    ],
)
def test_accepts_keys_of_1_to_1024_utf8_bytes_without_control_characters(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "k" * 1025,
        "é" * 513,
        "😀" * 256 + "k",
        "nul\x00",
        "tab\there",
        "new\nline",
        "del\x7f",
        "c1\x85",
        "c1\x9f",
        "lone \ud800 surrogate",
    ],
)
def test_refuses_other_keys_naming_path_key_and_what_is_accepted(key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_key(key)
    assert _loc(raised) == ("path", "key")
    assert KEY_RULE in raised.value.errors[0].msg
    assert "\n" not in raised.value.detail


def test_a_prefix_may_be_empty_but_follows_the_key_rules_otherwise() -> None:
    assert check_prefix(None) == ""
    assert check_prefix("") == ""
    assert check_prefix("orders/") == "orders/"
    for bad in ("x\x00", "k" * 1025):
        with pytest.raises(InvalidInput) as raised:
            check_prefix(bad)
        assert _loc(raised) == ("query", "prefix")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a", "b"),
        ("orders/", "orders0"),
        ("z", "{"),
        ("\ud7ff", "\ue000"),  # past the surrogates
        ("é", "ê"),
        ("a\U0010ffff", "b"),  # the top of Unicode is dropped and the one before goes up
        ("\U0010ffff\U0010ffff", None),
        ("", None),
    ],
)
def test_successor_raises_the_last_code_point(prefix: str, expected: str | None) -> None:
    assert successor(prefix) == expected


def test_the_successor_range_holds_exactly_the_keys_starting_with_the_prefix() -> None:
    rng = random.Random(1)
    alphabet = ["a", "b", "/", "é", "\ud7ff", "\ue000", "\uffff", "😀", "\U0010ffff"]
    keys = {"".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(3000)}
    for prefix in ["a", "é", "\ud7ff", "😀", "\U0010ffff", "a\U0010ffff", "/\uffff"]:
        high = successor(prefix)
        in_range = {k for k in keys if k >= prefix and (high is None or k < high)}
        assert in_range == {k for k in keys if k.startswith(prefix)}, prefix
        # UTF-8 byte order is code point order: what SQLite and PostgreSQL (COLLATE "C") use.
        assert sorted(in_range) == sorted(in_range, key=lambda k: k.encode())


def test_the_etag_is_a_strong_tag_of_the_content_type_and_the_bytes() -> None:
    digest = hashlib.sha256(b"text/plain\x00hello").hexdigest()
    assert etag_of("text/plain", b"hello") == f'"{digest[:32]}"'
    assert etag_of("text/plain", b"hello") == etag_of("text/plain", b"hello")
    assert etag_of("text/plain", b"hello") != etag_of("application/json", b"hello")
    assert etag_of("text/plain", b"hello") != etag_of("text/plain", b"hello!")
    # The NUL separates them: the type cannot absorb the first bytes of the value.
    assert etag_of("a", b"bc") != etag_of("ab", b"c")
    assert len(etag_of("x", b"")) == 34


@pytest.mark.parametrize(("raw", "seconds"), [("1", 1), (" 60 ", 60), ("315360000", 315360000)])
def test_ttl_header_takes_whole_seconds_up_to_ten_years(raw: str, seconds: int) -> None:
    assert parse_ttl(raw) == seconds
    assert parse_ttl(None) is None


@pytest.mark.parametrize(
    "raw", ["0", "-1", "+5", "1.5", "1e3", "abc", "", "315360001", "99999999999", "٣"]
)
def test_ttl_header_refuses_anything_else_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_ttl(raw)
    assert _loc(raised) == ("header", "x-obp-ttl")
    assert str(MAX_TTL_SECONDS) in raised.value.errors[0].msg


def test_etag_lists_parse_star_one_tag_several_and_weak_ones() -> None:
    assert parse_etags(None, header="if-match") is None
    assert parse_etags("*", header="if-match") == ("*",)
    assert parse_etags('"abc"', header="if-match") == ('"abc"',)
    assert parse_etags(' "a" , W/"b","c" ', header="if-none-match") == ('"a"', 'W/"b"', '"c"')


@pytest.mark.parametrize("raw", ["abc", '"unterminated', '"a" "b"', '"a",,"b"', "", "**"])
def test_malformed_etag_lists_are_refused_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_etags(raw, header="if-match")
    assert _loc(raised) == ("header", "if-match")


def _entry(etag: str = '"cur"') -> KvEntry:
    return KvEntry(
        key="k", content_type="text/plain", etag=etag, size=1, version=3, expires_at=None
    )


def test_if_match_holds_for_the_current_tag_or_star_and_never_for_an_absent_key() -> None:
    Preconditions(if_match=('"old"', '"cur"')).check_write(_entry())
    Preconditions(if_match=("*",)).check_write(_entry())
    for tags in [('"old"',), ('W/"cur"',)]:  # strong comparison: a weak tag never matches
        with pytest.raises(PreconditionFailed, match="If-Match"):
            Preconditions(if_match=tags).check_write(_entry())
    for tags in [("*",), ('"cur"',)]:
        with pytest.raises(PreconditionFailed, match="does not exist"):
            Preconditions(if_match=tags).check_write(None)


def test_if_none_match_star_holds_only_for_an_absent_key() -> None:
    Preconditions(if_none_match=("*",)).check_write(None)
    with pytest.raises(PreconditionFailed, match="exists"):
        Preconditions(if_none_match=("*",)).check_write(_entry())
    Preconditions(if_none_match=('"other"',)).check_write(_entry())
    with pytest.raises(PreconditionFailed):
        Preconditions(if_none_match=('W/"cur"',)).check_write(_entry())


def test_a_read_is_not_modified_when_if_none_match_lists_the_current_tag() -> None:
    assert Preconditions(if_none_match=('"cur"',)).not_modified(_entry())
    assert Preconditions(if_none_match=('W/"cur"',)).not_modified(_entry())
    assert Preconditions(if_none_match=("*",)).not_modified(_entry())
    assert not Preconditions(if_none_match=('"old"',)).not_modified(_entry())
    assert not Preconditions().not_modified(_entry())
    with pytest.raises(PreconditionFailed):
        Preconditions(if_match=('"old"',), if_none_match=('"cur"',)).not_modified(_entry())


def test_content_types_default_to_octet_stream_and_keep_their_parameters() -> None:
    assert check_content_type(None) == "application/octet-stream"
    assert check_content_type("") == "application/octet-stream"
    assert check_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert check_content_type("application/vnd.api+json") == "application/vnd.api+json"
    for bad in ["text", "text/", "/plain", "a b/c", "text/plain\x00", "x/" + "y" * 300]:
        with pytest.raises(InvalidInput) as raised:
            check_content_type(bad)
        assert _loc(raised) == ("header", "content-type")

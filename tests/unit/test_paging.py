"""Cursor paging: opaque cursors, bounded limits, pages that know when they end."""

from __future__ import annotations

import base64
import json

import pytest

from obp.kernel.errors import InvalidInput
from obp.kernel.paging import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    page_of,
    validate_limit,
)


def test_cursor_round_trips_any_key() -> None:
    for key in ["acme", "", "with/slash and ünïcode", "x" * 500]:
        assert decode_cursor(encode_cursor(key)) == key


def test_no_cursor_means_first_page() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor", ["garbage!", "e30", "bm90IGpzb24", encode_cursor("x")[:-2] + "@@"]
)
def test_rejects_cursors_the_api_did_not_return(cursor: str) -> None:
    with pytest.raises(InvalidInput) as error:
        decode_cursor(cursor)
    assert error.value.errors[0].loc == ("query", "cursor")


def test_limit_defaults_and_bounds() -> None:
    assert validate_limit(None) == DEFAULT_LIMIT
    assert validate_limit(MAX_LIMIT) == MAX_LIMIT
    for bad in (0, -1, MAX_LIMIT + 1):
        with pytest.raises(InvalidInput, match=str(MAX_LIMIT)):
            validate_limit(bad)


def test_page_has_a_cursor_only_when_more_items_exist() -> None:
    full = page_of(["a", "b", "c"], limit=2, key_of=str)
    assert list(full.items) == ["a", "b"]
    assert full.next_cursor is not None
    assert decode_cursor(full.next_cursor) == "b"
    last = page_of(["a", "b"], limit=2, key_of=str)
    assert last.next_cursor is None


@pytest.mark.parametrize("key", ["a\x00b", "\ud800"])
def test_rejects_cursors_carrying_keys_no_database_can_store(key: str) -> None:
    forged = base64.urlsafe_b64encode(json.dumps({"after": key}).encode()).decode()
    with pytest.raises(InvalidInput):
        decode_cursor(forged)

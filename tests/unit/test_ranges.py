"""Byte ranges and validators as RFC 9110 defines them."""

from __future__ import annotations

import pytest

from obp.http.ranges import ByteRange, if_range_allows, parse_range
from obp.kernel.errors import RangeNotSatisfiable
from obp.kernel.etags import matches, parse_etags


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99, 1000)),
        ("bytes=500-", ByteRange(500, 999, 1000)),
        ("bytes=-100", ByteRange(900, 999, 1000)),
        ("bytes=-5000", ByteRange(0, 999, 1000)),
        ("bytes=990-2000", ByteRange(990, 999, 1000)),
        ("bytes=999-999", ByteRange(999, 999, 1000)),
        ("BYTES = 1-2", ByteRange(1, 2, 1000)),
    ],
)
def test_parses_each_single_range_form(header: str, expected: ByteRange) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=9-3",
        "bytes=abc",
        "bytes=-",
        "bytes=1-2-3",
        "",
        "bytes=" + "9" * 5000 + "-",
        "bytes=-" + "9" * 5000,
    ],
)
def test_ignores_ranges_it_may_ignore(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-1", 0)],
)
def test_rejects_ranges_outside_the_resource_with_its_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.size == size


def test_content_range_and_length_describe_the_range() -> None:
    chosen = ByteRange(10, 19, 100)
    assert (chosen.length, chosen.content_range) == (10, "bytes 10-19/100")


def _if_none_match(header: str | None, etag: str) -> bool:
    tags = parse_etags(header, header="If-None-Match")
    return tags is not None and matches(tags, etag, weak=True)


def test_if_none_match_matches_listed_weak_or_star() -> None:
    assert _if_none_match('"a", "b"', '"b"')
    assert _if_none_match('W/"b"', '"b"')
    assert _if_none_match("*", '"b"')
    assert not _if_none_match('"a"', '"b"')
    assert not _if_none_match(None, '"b"')


def test_if_range_needs_the_current_strong_etag() -> None:
    assert if_range_allows(None, '"b"')
    assert if_range_allows('"b"', '"b"')
    assert not if_range_allows('"a"', '"b"')
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", '"b"')

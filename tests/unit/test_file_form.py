"""The streaming multipart reader: fields, the file part's bytes, and malformed forms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from obp.kernel.errors import InvalidInput
from obp.services.files.form import StreamingForm, boundary_of
from obp.services.files.model import check_content_type, check_name, parse_metadata

BOUNDARY = "----obp-test-boundary"


def _part(
    name: str, value: bytes, *, filename: str | None = None, kind: str | None = None
) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if kind:
        head += f"Content-Type: {kind}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def _form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _read(body: bytes, size: int) -> tuple[StreamingForm, bytes]:
    form = StreamingForm(_pieces(body, size), boundary=BOUNDARY.encode())
    data = b"".join([chunk async for chunk in form.chunks()])
    return form, data


@pytest.mark.parametrize("piece", [1, 7, 1024, 1 << 20])
async def test_yields_the_file_bytes_whatever_the_chunking(piece: int) -> None:
    content = bytes(range(256)) * 300 + b"\r\n--not-the-boundary\r\n"
    body = _form(
        _part("metadata", b'{"k": 1}'),
        _part("file", content, filename="report.bin", kind="application/x-test"),
    )
    form, data = await _read(body, piece)
    assert data == content
    assert (form.fields.name, form.fields.content_type, form.fields.metadata) == (
        "report.bin",
        "application/x-test",
        '{"k": 1}',
    )


async def test_explicit_fields_win_over_the_file_part_headers_even_after_it() -> None:
    body = _form(
        _part("file", b"x", filename="a.txt", kind="text/plain"),
        _part("name", "dir/é.txt".encode()),
        _part("content_type", b"text/csv"),
    )
    form, _ = await _read(body, 5)
    assert (form.fields.name, form.fields.content_type) == ("dir/é.txt", "text/csv")


async def test_a_form_without_a_file_part_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        await _read(_form(_part("name", b"x")), 64)
    assert raised.value.errors[0].loc == ("body", "file")


async def test_two_file_parts_are_refused() -> None:
    body = _form(_part("file", b"a", filename="a"), _part("file", b"b", filename="b"))
    with pytest.raises(InvalidInput, match="only one part"):
        await _read(body, 64)


async def test_a_truncated_form_is_refused() -> None:
    body = _form(_part("file", b"abc", filename="a"))[:-30]
    with pytest.raises(InvalidInput):
        await _read(body, 64)


def test_a_content_type_without_boundary_is_refused_naming_the_header() -> None:
    with pytest.raises(InvalidInput) as raised:
        boundary_of("multipart/form-data")
    assert raised.value.errors[0].loc == ("header", "Content-Type")


@pytest.mark.parametrize("name", ["", "a\x00b", "tab\there", "x" * 1025, "\ud800"])
def test_rejects_bad_file_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name, loc=("body", "name"))


def test_accepts_unicode_names_with_slashes() -> None:
    assert check_name("reports/2026/café ☕.pdf", loc=("body", "name"))


@pytest.mark.parametrize("value", ["text", "/plain", "text/", "tëxt/plain", "a/b\n"])
def test_rejects_content_types_that_are_not_media_types(value: str) -> None:
    with pytest.raises(InvalidInput, match="media type"):
        check_content_type(value, loc=("header", "Content-Type"))


def test_missing_content_type_means_octet_stream() -> None:
    assert check_content_type(None, loc=("x",)) == "application/octet-stream"
    assert check_content_type("text/plain; charset=utf-8", loc=("x",)).startswith("text/plain")


@pytest.mark.parametrize(
    "raw",
    [
        "[1]",
        "nope",
        '"s"',
        "{" + '"a":"' + "x" * 17000 + '"}',
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": "\\ud800"}',  # a lone surrogate: no database or response can carry it
        '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"a": ' + "[" * 40 + "]" * 40 + "}",
    ],
)
def test_metadata_must_be_a_small_json_object(raw: str) -> None:
    with pytest.raises(InvalidInput):
        parse_metadata(raw, loc=("header", "X-OBP-Metadata"))


def test_metadata_nested_up_to_32_levels_is_accepted() -> None:
    raw = '{"a": ' + "[" * 31 + "]" * 31 + "}"
    nested = parse_metadata(raw, loc=("x",))["a"]
    depth = 1
    while nested:
        nested, depth = nested[0], depth + 1
    assert depth == 31

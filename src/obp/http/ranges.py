"""HTTP range and validator semantics (RFC 9110 sections 13 and 14) for byte resources."""

from __future__ import annotations

import re
from dataclasses import dataclass

from obp.kernel.errors import RangeNotSatisfiable

# At most 18 digits: larger positions exceed any file, and int() refuses 4,300 digits and more.
_SPEC = re.compile(r"^\s*(\d{0,18})\s*-\s*(\d{0,18})\s*$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start` to `end` inclusive of a resource of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The `Content-Range` header value of a 206 answer."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for, None to send the whole resource.

    A header that does not parse, names another unit or asks for several ranges is ignored, as
    RFC 9110 allows; a well-formed range wholly outside the resource raises `RangeNotSatisfiable`.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.match(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # -n: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return ByteRange(start=max(size - suffix, 0), end=size - 1, size=size)
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        return None  # syntactically invalid: ignore it
    if start >= size:
        raise _unsatisfiable(header, size)
    return ByteRange(start=start, end=min(end, size - 1), size=size)


def if_range_allows(header: str | None, etag: str) -> bool:
    """Whether a Range may be honoured under `If-Range` (strong comparison; dates never match)."""
    return header is None or header.strip() == etag


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"range {header!r} lies outside the {size} bytes of the file; ask within bytes=0-{size - 1}"
        if size
        else f"range {header!r} cannot be served: the file is empty",
        size=size,
    )

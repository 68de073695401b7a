"""What both blob adapters check the same way: keys, prefixes, ranges, and the chunk size."""

from __future__ import annotations

import re

from obp.kernel.errors import InvalidInput

# Reads yield at most this much at a time, and the file adapter writes this much at a time.
CHUNK_BYTES = 1024 * 1024
KEY_MAX_BYTES = 1024
# A file name cannot be longer on the usual filesystems; S3 would take it, but then the same
# key would work on one adapter and not on the other.
SEGMENT_MAX_BYTES = 255

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_PARTIAL_SEGMENT = re.compile(r"[A-Za-z0-9._-]*")
_ACCEPTED = (
    "`/`-separated segments of A-Z a-z 0-9 . _ - (not `.` or `..`, at most "
    f"{SEGMENT_MAX_BYTES} bytes each), at most {KEY_MAX_BYTES} bytes in all"
)


def check_key(key: str) -> str:
    """`key` if it is a valid blob key, else `InvalidInput` saying what is accepted."""
    if not isinstance(key, str) or not key:
        raise InvalidInput.field(("key",), f"a blob key is required: {_ACCEPTED}")
    if len(key) > KEY_MAX_BYTES:  # ASCII only once checked, so characters are bytes
        raise InvalidInput.field(("key",), f"blob key is too long: {_ACCEPTED}")
    for segment in key.split("/"):
        if not _valid_segment(segment):
            raise InvalidInput.field(("key",), f"invalid blob key {key[:100]!r}: {_ACCEPTED}")
    return key


def check_prefix(prefix: str) -> str:
    """`prefix` if keys can start with it and it is not empty (that would be every object)."""
    if not isinstance(prefix, str) or not prefix:
        raise InvalidInput.field(("prefix",), "a blob key prefix is required (not empty)")
    if len(prefix) > KEY_MAX_BYTES:
        raise InvalidInput.field(("prefix",), f"blob key prefix is too long: {_ACCEPTED}")
    *folders, last = prefix.split("/")
    # The last segment may be cut short anywhere, even to nothing (`ns/`) or to `.`.
    if not all(_valid_segment(folder) for folder in folders) or not (
        _PARTIAL_SEGMENT.fullmatch(last) and len(last) <= SEGMENT_MAX_BYTES
    ):
        raise InvalidInput.field(
            ("prefix",), f"invalid blob key prefix {prefix[:100]!r}: keys are {_ACCEPTED}"
        )
    return prefix


def check_range(offset: int, length: int | None) -> None:
    """`InvalidInput` unless the offset is at least 0 and the length None or at least 0."""
    if offset < 0:
        raise InvalidInput.field(("offset",), f"must be 0 or more, got {offset}")
    if length is not None and length < 0:
        raise InvalidInput.field(("length",), f"must be 0 or more, got {length}")


def _valid_segment(segment: str) -> bool:
    return (
        segment not in (".", "..")
        and len(segment) <= SEGMENT_MAX_BYTES
        and _SEGMENT.fullmatch(segment) is not None
    )

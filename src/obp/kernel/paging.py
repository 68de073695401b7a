"""Cursor paging: opaque cursors that carry the last sort key seen."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from obp.kernel.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; `next_cursor` is None on the last page."""

    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(after: str) -> str:
    """An opaque cursor meaning "items strictly after this sort key"."""
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key a cursor carries, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        # Keys are text a database can store: no NUL, no lone surrogates.
        if not isinstance(after, str) or "\x00" in after:
            raise ValueError(after)
        after.encode()
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput.field(
            ("query", "cursor"), "is not a cursor this API returned; pass next_cursor unchanged"
        ) from exc
    return after


def validate_limit(limit: int | None) -> int:
    """The page size to use, or `InvalidInput` naming the accepted range."""
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.field(("query", "limit"), f"must be between 1 and {MAX_LIMIT}")
    return limit


def page_of(items: Sequence[T], *, limit: int, key_of: Callable[[T], str]) -> Page[T]:
    """Build a page from up to `limit + 1` fetched items (the extra one proves there is more)."""
    if len(items) > limit:
        kept = items[:limit]
        return Page(items=kept, next_cursor=encode_cursor(key_of(kept[-1])))
    return Page(items=items, next_cursor=None)

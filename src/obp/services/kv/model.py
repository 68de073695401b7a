"""Key-value entries: keys, entity tags, TTLs and preconditions; no I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from obp.kernel.errors import InvalidInput, PreconditionFailed
from obp.kernel.etags import ANY, matches

MAX_KEY_BYTES = 1024
MAX_TTL_SECONDS = 315_360_000  # ten years
MAX_CONTENT_TYPE = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
KEY_RULE = (
    f"1 to {MAX_KEY_BYTES} bytes of UTF-8 text, any character except control characters "
    "(U+0000-U+001F, U+007F-U+009F); '/' is allowed"
)
TTL_RULE = f"an integer number of seconds from 1 to {MAX_TTL_SECONDS}"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_TTL = re.compile(r"[0-9]{1,10}")
_CONTENT_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[ -~]*)?")
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True, slots=True)
class KvEntry:
    """A stored value as callers see it; `value` is None when only metadata was asked for."""

    key: str
    content_type: str
    etag: str
    size: int
    version: int
    expires_at: datetime | None
    updated_at: datetime | None = None
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class KvRow:
    """One row of `kv_entries`: a value, or a tombstone that keeps the key's version count."""

    namespace: str
    key: str
    content_type: str
    etag: str
    size: int
    version: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    tombstone: bool = False
    value: bytes | None = None  # None for a tombstone, and for a row read without its bytes

    def live(self, *, now: datetime, since: datetime) -> bool:
        """Whether it is a value this incarnation of the namespace can see right now."""
        return (
            not self.tombstone
            and self.created_at >= since
            and (self.expires_at is None or self.expires_at > now)
        )

    def entry(self, *, with_value: bool = True) -> KvEntry:
        """The public view of a live row."""
        return KvEntry(
            key=self.key,
            content_type=self.content_type,
            etag=self.etag,
            size=self.size,
            version=self.version,
            expires_at=self.expires_at,
            updated_at=self.updated_at,
            value=self.value if with_value else None,
        )


@dataclass(frozen=True, slots=True)
class Preconditions:
    """`If-Match` and `If-None-Match`: None when absent, else entity tags or `*`."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None

    def check_write(self, current: KvEntry | None) -> None:
        """Raise `PreconditionFailed` unless a write (PUT, DELETE) may go ahead."""
        if self.if_match is not None and not _matches(self.if_match, current, weak=False):
            raise PreconditionFailed(
                "If-Match: " + ("the key does not exist" if current is None else "etag differs")
            )
        if self.if_none_match is not None and _matches(self.if_none_match, current, weak=True):
            raise PreconditionFailed(
                "If-None-Match: the key exists"
                if self.if_none_match == (ANY,)
                else "If-None-Match: the current etag is listed"
            )

    def not_modified(self, current: KvEntry) -> bool:
        """Whether a GET or HEAD answers 304 (after `If-Match` held, else 412)."""
        if self.if_match is not None and not _matches(self.if_match, current, weak=False):
            raise PreconditionFailed("If-Match: the etag differs")
        return self.if_none_match is not None and _matches(self.if_none_match, current, weak=True)


def _matches(tags: tuple[str, ...], current: KvEntry | None, *, weak: bool) -> bool:
    return matches(tags, None if current is None else current.etag, weak=weak)


def check_key(key: str) -> str:
    """Return a valid key or raise `InvalidInput` naming `path.key` and what is accepted."""
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        size = -1
    if not 1 <= size <= MAX_KEY_BYTES or _CONTROL.search(key):
        raise InvalidInput.field(("path", "key"), f"{_shown(key)} is not a valid key: {KEY_RULE}")
    return key


def check_prefix(prefix: str | None) -> str:
    """A valid listing prefix ('' for none) or `InvalidInput` naming `query.prefix`."""
    if not prefix:
        return ""
    try:
        size = len(prefix.encode())
    except UnicodeEncodeError:
        size = -1
    if not 0 <= size <= MAX_KEY_BYTES or _CONTROL.search(prefix):
        raise InvalidInput.field(
            ("query", "prefix"), f"{_shown(prefix)} is not a valid prefix: {KEY_RULE}"
        )
    return prefix


def successor(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix`, in code point order.

    The last code point goes up by one (past the surrogates, which no key holds); one at the
    top of Unicode is dropped and the one before it goes up instead. None: no upper bound.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if last in _SURROGATES:
            last = _SURROGATES.stop
        if last <= 0x10FFFF:
            return "".join(chars) + chr(last)
    return None


def etag_of(content_type: str, value: bytes) -> str:
    """A strong entity tag derived from the content: the same bytes and type, the same tag."""
    digest = hashlib.sha256(content_type.encode() + b"\x00" + value).hexdigest()
    return f'"{digest[:32]}"'


def parse_ttl(raw: str | None) -> int | None:
    """The `X-OBP-TTL` header as seconds, or `InvalidInput` naming it and what is accepted."""
    if raw is None:
        return None
    text = raw.strip()
    if not _TTL.fullmatch(text):
        raise InvalidInput.field(("header", "x-obp-ttl"), f"{_shown(raw)} is not {TTL_RULE}")
    return check_ttl(int(text))


def check_ttl(seconds: int | None) -> int | None:
    """Return a valid TTL or raise `InvalidInput` naming `header.x-obp-ttl`."""
    if seconds is not None and not 1 <= seconds <= MAX_TTL_SECONDS:
        raise InvalidInput.field(("header", "x-obp-ttl"), f"{seconds} is not {TTL_RULE}")
    return seconds


def check_content_type(raw: str | None) -> str:
    """The media type to store (octet-stream when none), or `InvalidInput` naming it."""
    if raw is None or not raw.strip():
        return DEFAULT_CONTENT_TYPE
    text = raw.strip()
    if len(text) > MAX_CONTENT_TYPE or not _CONTENT_TYPE.fullmatch(text):
        raise InvalidInput.field(
            ("header", "content-type"),
            f"{_shown(raw)} is not a media type such as 'application/json' "
            f"(type/subtype, optional parameters, at most {MAX_CONTENT_TYPE} characters)",
        )
    return text


def _shown(text: str) -> str:
    # repr escapes control characters, so the message itself stays one clean line.
    return repr(text if len(text) <= 70 else text[:64] + "...")

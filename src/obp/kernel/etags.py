"""Entity tags and the `If-Match` / `If-None-Match` lists that name them (RFC 9110 8.8.3)."""

from __future__ import annotations

import re

from obp.kernel.errors import InvalidInput

ANY = "*"
ETAG_LIST_RULE = '"*" or a comma-separated list of quoted entity tags such as "0f3a..."'

_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


def parse_etags(raw: str | None, *, header: str) -> tuple[str, ...] | None:
    """`If-Match` / `If-None-Match` as a tuple of tags (`("*",)` for any), None if absent."""
    if raw is None:
        return None
    text = raw.strip()
    if text == ANY:
        return (ANY,)
    tags: list[str] = []
    position = 0
    while position < len(text):
        found = _ETAG.match(text, position)
        if found is None or found.end() == position:
            break
        tags.append(f'{found.group(1) or ""}"{found.group(2)}"')
        position = found.end()
    if not tags or position < len(text):
        raise InvalidInput.field(
            ("header", header), f"{_shown(raw)} is not accepted: send {ETAG_LIST_RULE}"
        )
    return tuple(tags)


def matches(tags: tuple[str, ...], etag: str | None, *, weak: bool) -> bool:
    """Whether `tags` name `etag` (None: nothing exists); `If-Match` compares strongly."""
    if etag is None:
        return False
    if tags == (ANY,):
        return True
    # Strong comparison (If-Match) never matches a weak tag; weak comparison ignores W/.
    return any((tag.removeprefix("W/") if weak else tag) == etag for tag in tags)


def _shown(text: str) -> str:
    # repr escapes control characters, so the message itself stays one clean line.
    return repr(text if len(text) <= 70 else text[:64] + "...")

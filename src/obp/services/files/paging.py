"""Cursors over (name, id): names repeat, ids break the tie."""

from __future__ import annotations

import json

from obp.kernel.errors import InvalidInput
from obp.kernel.paging import decode_cursor, encode_cursor
from obp.services.files.model import FileRecord, check_name, is_file_id


def encode_position(record: FileRecord) -> str:
    """The cursor meaning "after this file"."""
    return encode_cursor(json.dumps([record.name, record.id], separators=(",", ":")))


def decode_position(cursor: str | None) -> tuple[str, str] | None:
    """(name, id) a cursor carries, or None for the first page."""
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        name, file_id = json.loads(raw)
        if not isinstance(name, str) or not isinstance(file_id, str):
            raise ValueError(raw)
        check_name(name, loc=("query", "cursor"))
        if not is_file_id(file_id):
            raise ValueError(raw)
    except (ValueError, TypeError, InvalidInput) as exc:
        raise InvalidInput.field(
            ("query", "cursor"), "is not a cursor this API returned; pass next_cursor unchanged"
        ) from exc
    return name, file_id

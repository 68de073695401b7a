"""File records and the rules their fields keep; no I/O."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obp.kernel.errors import InvalidInput
from obp.kernel.usage import Usage

__all__ = ["FileRecord", "Usage"]

MAX_NAME_BYTES = 1024
MAX_CONTENT_TYPE = 255
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 32
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file: its bytes live in the blob store under `blob_key`."""

    namespace: str
    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    metadata: dict[str, Any]
    created_at: datetime
    created_by: str

    @property
    def blob_key(self) -> str:
        """Where the bytes are: blob keys start with the namespace."""
        return blob_key(self.namespace, self.id)

    @property
    def etag(self) -> str:
        """A strong validator: the SHA-256 of the content, quoted."""
        return f'"{self.sha256}"'


def blob_key(namespace: str, file_id: str) -> str:
    """The blob key of a file."""
    return f"{namespace}/files/{file_id}"


def check_name(name: str, *, loc: tuple[str | int, ...]) -> str:
    """A file name: 1 to 1024 bytes of UTF-8, no control characters, `/` allowed."""
    if not name or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidInput.field(loc, f"must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise InvalidInput.field(
            loc,
            "must not contain control characters or lone surrogates; any other text is accepted",
        )
    return name


def check_content_type(content_type: str | None, *, loc: tuple[str | int, ...]) -> str:
    """A media type such as `text/plain; charset=utf-8`; absent means octet-stream."""
    if content_type is None or content_type.strip() == "":
        return DEFAULT_CONTENT_TYPE
    value = content_type.strip()
    kind, _, _ = value.partition(";")
    main, slash, sub = kind.strip().partition("/")
    if (
        len(value) > MAX_CONTENT_TYPE
        or not slash
        or not main
        or not sub
        or not value.isascii()
        or any(not char.isprintable() for char in content_type)
    ):
        raise InvalidInput.field(
            loc, f"must be a media type like 'text/plain', at most {MAX_CONTENT_TYPE} characters"
        )
    return value


def parse_metadata(raw: str | None, *, loc: tuple[str | int, ...]) -> dict[str, Any]:
    """User metadata: a JSON object of at most 16 KiB and 32 levels, given as text."""
    if raw is None or raw.strip() == "":
        return {}
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
        raise InvalidInput.field(loc, f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
    accepted = 'must be a JSON object such as {"k": "v"}, nested at most 32 levels'
    try:
        value = json.loads(raw, parse_constant=_no_constant)
        # What the database and the response must hold: text without lone surrogates.
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError, UnicodeError) as exc:
        raise InvalidInput.field(loc, accepted) from exc
    if not isinstance(value, dict) or _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidInput.field(loc, accepted)
    return value


def is_file_id(value: str) -> bool:
    """Whether `value` has the shape of a file id (a UUID); others name no file."""
    return _ID.fullmatch(value) is not None


def check_prefix(prefix: str | None) -> str | None:
    """A name prefix for listing: any text a name may hold, or none."""
    if prefix:
        check_name(prefix, loc=("query", "prefix"))
    return prefix or None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0

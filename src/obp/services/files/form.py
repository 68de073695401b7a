"""A multipart/form-data upload read as a stream: the file part is never held whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from obp.kernel.errors import InvalidInput
from obp.services.files.upload import UploadFields

FILE_FIELD = "file"
TEXT_FIELDS = ("name", "content_type", "metadata")
_MAX_TEXT = 32 * 1024


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or a 422 naming the header."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput.field(
            ("header", "Content-Type"), "multipart/form-data needs a boundary parameter"
        )
    return boundary


class StreamingForm:
    """Feeds a request body through python-multipart and yields the `file` part's bytes."""

    def __init__(self, body: AsyncIterator[bytes], *, boundary: bytes) -> None:
        self._body = body
        self.fields = UploadFields(
            locations={name: ("body", name) for name in TEXT_FIELDS},
        )
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._part: str | None = None
        self._text = bytearray()
        self._out: list[bytes] = []
        self._files = 0
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive; a 422 at the end if there was none."""
        async for data in self._body:
            try:
                self._parser.write(data)
            except MultipartParseError as exc:
                raise InvalidInput.field(
                    ("body",), f"is not a valid multipart/form-data body: {exc}"
                ) from exc
            if self._out:
                out, self._out = self._out, []
                for piece in out:
                    yield piece
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise InvalidInput.field(("body",), "ends before the multipart form does") from exc
        if not self._ended:
            raise InvalidInput.field(("body",), "ends before the multipart form's closing boundary")
        if self._files != 1:
            raise InvalidInput.field(
                ("body", FILE_FIELD), "the form must carry exactly one part named 'file'"
            )

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._text = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part = name
        if name != FILE_FIELD:
            return
        self._files += 1
        if self._files > 1:
            raise InvalidInput.field(("body", FILE_FIELD), "only one part named 'file' is accepted")
        filename = options.get(b"filename")
        if filename and self.fields.name is None:
            self.fields.name = _utf8(filename, "file")
        part_type = self._headers.get("content-type")
        if part_type and self.fields.content_type is None:
            self.fields.content_type = _utf8(part_type, "file")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            self._out.append(bytes(data[start:end]))
        elif self._part in TEXT_FIELDS:
            self._text += data[start:end]
            if len(self._text) > _MAX_TEXT:
                raise InvalidInput.field(("body", self._part), f"must be at most {_MAX_TEXT} bytes")

    def _on_end(self) -> None:
        self._ended = True

    def _on_part_end(self) -> None:
        if self._part in TEXT_FIELDS:
            # Explicit fields win over what the file part's own headers said.
            setattr(self.fields, self._part, _utf8(bytes(self._text), self._part))
        self._part = None


def _utf8(raw: bytes, field: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput.field(("body", field), "must be UTF-8 text") from exc

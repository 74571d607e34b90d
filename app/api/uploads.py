"""A multipart/form-data body read as it arrives: the small fields are collected, the one file part's bytes are
handed on chunk by chunk (python-multipart's streaming parser over Starlette's `request.stream()`), so an
upload never sits whole in memory or in a spool file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.domain.errors import ValidationFailed

MAX_FIELD_BYTES = 1000  # a text field (an id, a type name) is never larger
MAX_FIELDS = 20


@dataclass
class FilePart:
    field: str
    filename: str | None
    content_type: str | None


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


class StreamedForm:
    """`await until_file()` reads up to the start of the file part (the fields before it are then in `fields`);
    `file_chunks()` yields its bytes, then reads the rest of the body (fields after the file land in `fields`)."""

    def __init__(self, request: Request, file_field: str = "file") -> None:
        media, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if media != b"multipart/form-data" or not boundary:
            raise ValidationFailed("send the file as multipart/form-data", loc=("body",))
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.file: FilePart | None = None
        self._stream = request.stream().__aiter__()
        self._ended = False  # the body is read whole
        self._file_done = False
        self._pending: list[bytes] = []  # file bytes parsed but not yet handed on
        self._part: _Part | None = None
        self._header_field, self._header_value = bytearray(), bytearray()
        self._error: ValidationFailed | None = None
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._on_part_begin, "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end, "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value, "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished, "on_end": self._on_end})
        self._parsed_end = False

    # parser callbacks (synchronous, within `write`) -----------------------------------------------------

    def _fail(self, message: str, loc: tuple[Any, ...] = ("body",)) -> None:
        if self._error is None:
            self._error = ValidationFailed(message, loc=loc)

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        assert self._part is not None
        self._part.headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        assert part is not None
        _, options = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if part.name == self.file_field:
            if self.file is not None:
                self._fail(f"{self.file_field}: send one file", ("body", self.file_field))
            part.is_file = True
            self.file = FilePart(part.name, filename.decode("utf-8", "replace") if filename is not None else None,
                                 part.headers.get("content-type"))
        elif filename is not None:
            self._fail(f"{part.name}: a file is expected only in {self.file_field!r}", ("body", part.name))
        elif len(self.fields) >= MAX_FIELDS:
            self._fail("too many form fields")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None
        if part.is_file:
            if not self._file_done:
                self._pending.append(data[start:end])
        else:
            part.value += data[start:end]
            if len(part.value) > MAX_FIELD_BYTES:
                self._fail(f"{part.name}: at most {MAX_FIELD_BYTES} bytes", ("body", part.name))
                part.value.clear()

    def _on_part_end(self) -> None:
        part = self._part
        assert part is not None
        if part.is_file:
            self._file_done = True
        elif part.name:
            try:
                value = part.value.decode("utf-8")
            except UnicodeDecodeError:
                self._fail(f"{part.name}: not UTF-8 text", ("body", part.name))
                value = ""
            if part.name in self.fields:
                self._fail(f"{part.name}: given more than once", ("body", part.name))
            self.fields.setdefault(part.name, value)
        self._part = None

    def _on_end(self) -> None:
        self._parsed_end = True

    # reading --------------------------------------------------------------------------------------------

    async def _read(self) -> bool:
        """Feed the parser the next chunk of the body; False at its end."""
        if self._ended:
            return False
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            chunk = b""
        if not chunk:
            self._ended = True
            self._parser.finalize()
            if not self._parsed_end:
                raise ValidationFailed("the multipart body ends before its closing boundary", loc=("body",))
        else:
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise ValidationFailed(f"malformed multipart body: {exc}", loc=("body",)) from None
        if self._error is not None:
            raise self._error
        return not self._ended

    async def until_file(self) -> bool:
        """Read until the file part begins (True) or the body ends without one (False)."""
        while self.file is None:
            if not await self._read():
                return False
        return True

    async def file_chunks(self) -> AsyncIterator[bytes]:
        assert self.file is not None
        while True:
            while self._pending:
                yield self._pending.pop(0)
            if self._file_done or not await self._read():
                break
        while self._pending:
            yield self._pending.pop(0)

    async def rest(self) -> None:
        """Read the body to its end (the fields after the file)."""
        while await self._read():
            pass

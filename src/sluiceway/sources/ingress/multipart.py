"""Streaming ``multipart/form-data`` reading: the file part goes straight to the blob spool.

python-multipart parses each chunk as it arrives (its callbacks are synchronous and only
note what they saw); this module then acts on those notes asynchronously: when the file
part's headers are complete it asks ``on_file(content_type)`` for the part's size limit (so
a wrong content type is refused before its bytes are read), streams the part into a
``BlobWriter`` and commits it. Small fields (``test``, ``metadata``) are kept in memory up
to ``field_limit`` bytes each (``FIELD_LIMIT`` by default); at most ``MAX_PARTS`` parts are
read. Which part names count as the file part is the caller's (``file_fields``; default
``file``/``upload``, as insights-ingress has it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from python_multipart.multipart import MultipartParser, parse_options_header

from sluiceway.blobs import BlobSpool, BlobWriter, SpooledBlob
from sluiceway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from sluiceway.http.body import body_chunks

FIELD_LIMIT = 64 * 1024
MAX_PARTS = 16
FILE_FIELDS = ("file", "upload")


@dataclass
class Form:
    blob: SpooledBlob | None = None
    file_field: str | None = None
    filename: str | None = None
    content_type: str = ""
    fields: dict[str, bytes] = field(default_factory=dict)


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.filename: str | None = None
        self.content_type = ""
        self.writer: BlobWriter | None = None
        self.value = bytearray()


async def read_form(receive: Any, content_type: str, spool: BlobSpool,
                    on_file: Callable[[str], int], *, file_fields: tuple[str, ...] = FILE_FIELDS,
                    field_limit: int = FIELD_LIMIT) -> Form:
    """Read the request body; ``on_file(part content type)`` returns the part's byte limit or
    raises (e.g. 415). Only the first part named in ``file_fields`` is stored; a second one is
    refused. Every other part (with or without a filename) is a field of ``field_limit`` bytes."""
    mt, params = parse_options_header(content_type)
    if mt != b"multipart/form-data":
        raise UnsupportedMediaType(f"content type {mt.decode('latin-1')!r} is not supported; send multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")

    notes: list[tuple[str, Any]] = []
    header: list[bytes] = [b"", b""]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        notes.append(("header", (header[0].lower(), header[1])))
        header[0], header[1] = b"", b""

    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": lambda: notes.append(("begin", None)),
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": lambda: notes.append(("headers", None)),
        "on_part_data": lambda data, start, end: notes.append(("data", data[start:end])),
        "on_part_end": lambda: notes.append(("end", None)),
        "on_end": lambda: notes.append(("done", None)),
    })
    form = Form()
    part: _Part | None = None
    parts = 0
    finished = False
    try:
        async for chunk in body_chunks(receive):
            try:
                parser.write(chunk)
            except Exception as e:  # python-multipart raises its own errors on bad input
                raise BadRequest(f"malformed multipart body: {e}") from None
            for kind, value in notes:
                if kind == "begin":
                    parts += 1
                    if parts > MAX_PARTS:
                        raise BadRequest(f"more than {MAX_PARTS} multipart parts")
                    part = _Part()
                elif kind == "header" and part is not None:
                    part.headers[value[0]] = value[1]
                elif kind == "headers" and part is not None:
                    _start_part(part, form, spool, on_file, file_fields)
                elif kind == "data" and part is not None:
                    if part.writer is not None:
                        await part.writer.write(value)
                    elif part.name is not None:
                        if len(part.value) + len(value) > field_limit:
                            raise PayloadTooLarge(f"form field {part.name!r} exceeds {field_limit} bytes")
                        part.value += value
                elif kind == "end" and part is not None:
                    if part.writer is not None:
                        form.blob = await part.writer.commit()
                        part.writer = None
                    elif part.name is not None:
                        form.fields[part.name] = bytes(part.value)
                    part = None
                elif kind == "done":
                    finished = True
            notes.clear()
        if not finished:
            raise BadRequest("multipart body is truncated (no closing boundary)")
    except BaseException:
        if part is not None and part.writer is not None:
            part.writer.abort()
        if form.blob is not None:
            spool.discard(form.blob.key)
        raise
    return form


def _start_part(part: _Part, form: Form, spool: BlobSpool, on_file: Callable[[str], int],
                file_fields: tuple[str, ...]) -> None:
    _, disp = parse_options_header(part.headers.get(b"content-disposition", b"").decode("latin-1"))
    part.name = disp.get(b"name", b"").decode("utf-8", "replace") or None
    filename = disp.get(b"filename")
    part.filename = filename.decode("utf-8", "replace") if filename is not None else None
    part.content_type = part.headers.get(b"content-type", b"").decode("latin-1").strip()
    if part.name in file_fields and form.file_field is None:
        limit = on_file(part.content_type)
        form.file_field, form.filename, form.content_type = part.name, part.filename, part.content_type
        part.writer = spool.writer(limit)
    elif part.name in file_fields:
        first, *rest = file_fields
        names = repr(first) + (f" (or {' or '.join(map(repr, rest))})" if rest else "")
        raise BadRequest(f"more than one file part; send exactly one {names} part")

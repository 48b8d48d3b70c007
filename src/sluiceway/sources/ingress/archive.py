"""Reading uploaded archives safely: they are hostile until proven otherwise.

``extract(path, limits)`` reads a gzip tar (or plain tar) from disk as a stream and returns
the JSON documents of its ``.json`` members (one each) and ``.jsonl``/``.ndjson`` members (one
per non-blank line). Nothing is written to disk and no member is trusted:

- members with an absolute path, a ``..`` segment or an empty name, and links, devices and
  fifos refuse the whole archive (``ArchiveRefused`` → 400, naming the member);
- more than ``max_members`` members, a member over ``max_member_bytes``, more than
  ``max_uncompressed_bytes`` in total, or an expansion over ``max_ratio`` times the upload's
  size refuse it as too large (``ArchiveTooLarge`` → 413). The counters run on the
  decompressed stream as it is read, so a gzip bomb stops at the limit, never in memory;
- bytes that are not a tar (or a truncated one) refuse it (``ArchiveRefused``);
- a member that is not valid JSON is listed in ``invalid`` with the reason; other files
  (not ``.json``/``.jsonl``/``.ndjson``) and directories are listed in ``skipped``.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sluiceway.errors import BadRequest, PayloadTooLarge
from sluiceway.record import TooDeep, dumps_exact, loads_payload

JSON_SUFFIXES = (".json",)
LINE_SUFFIXES = (".jsonl", ".ndjson")


class ArchiveRefused(BadRequest):
    code = "archive_refused"


class ArchiveTooLarge(PayloadTooLarge):
    code = "archive_too_large"


@dataclass(frozen=True)
class Limits:
    max_members: int = 50_000
    max_member_bytes: int = 100 * 1024 * 1024
    max_uncompressed_bytes: int = 1024**3
    max_ratio: float = 200.0


@dataclass
class Document:
    file: str
    line: int | None  # 1-based for .jsonl members, None for .json
    doc: Any
    raw: bytes  # the document's JSON text on one line


@dataclass
class Contents:
    documents: list[Document] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"}
    skipped: list[str] = field(default_factory=list)
    members: int = 0


class _Counting:
    """A read-only stream that enforces the size and ratio limits on what it yields."""

    def __init__(self, inner: BinaryIO, limits: Limits, compressed_size: int):
        self.inner = inner
        self.count = 0
        self.cap = min(limits.max_uncompressed_bytes, int(max(compressed_size, 1) * limits.max_ratio) + 1024 * 1024)
        self.limits = limits

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n if n is not None and n >= 0 else 1024 * 1024)
        self.count += len(data)
        if self.count > self.cap:
            raise ArchiveTooLarge(
                f"archive expands past {self.cap} bytes (limits: {self.limits.max_uncompressed_bytes} bytes, "
                f"{self.limits.max_ratio:g}× the upload)")
        return data


def _check_name(name: str, is_dir: bool = False) -> str:
    """The member's clean relative name (``./a/b.json`` → ``a/b.json``; ``.`` itself, as
    ``tar czf x.tgz -C dir .`` writes it, is the empty name of a directory)."""
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or ".." in parts or (len(clean) > 1 and clean[1] == ":") or (not parts and not is_dir):
        raise ArchiveRefused(f"archive member {name!r} has an unsafe path (absolute, '..' or empty)")
    return "/".join(parts)


def extract(path: Path, limits: Limits = Limits()) -> Contents:
    size = path.stat().st_size
    out = Contents()
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        inner: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
        stream = _Counting(inner, limits, size)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _member(tar, member, limits, out)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise ArchiveRefused(f"not a readable tar or gzip tar archive: {e}") from None
    return out


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, limits: Limits, out: Contents) -> None:
    out.members += 1
    if out.members > limits.max_members:
        raise ArchiveTooLarge(f"archive has more than {limits.max_members} members")
    name = _check_name(member.name, member.isdir())
    if member.isdir():
        return
    if not member.isfile():
        kind = "link" if member.issym() or member.islnk() else "device or fifo"
        raise ArchiveRefused(f"archive member {name!r} is a {kind}; only regular files are accepted")
    if member.size > limits.max_member_bytes:
        raise ArchiveTooLarge(f"archive member {name!r} has {member.size} bytes; the limit is {limits.max_member_bytes}")
    lower = name.lower()
    if not lower.endswith(JSON_SUFFIXES + LINE_SUFFIXES):
        out.skipped.append(name)
        return
    f = tar.extractfile(member)
    data = f.read() if f is not None else b""
    if lower.endswith(JSON_SUFFIXES):
        _add(out, name, None, data)
        return
    for i, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            _add(out, name, i, line)


def _add(out: Contents, name: str, line: int | None, data: bytes) -> None:
    where = f"{name}:{line}" if line else name
    try:
        doc = loads_payload(data, within=1)  # its record's payload holds it as "data"
    except TooDeep as e:
        out.invalid.append({"file": where, "error": str(e)})
        return
    except json.JSONDecodeError as e:
        out.invalid.append({"file": where, "error": f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"})
        return
    raw = data.strip()
    if b"\n" in raw or b"\r" in raw:
        raw = dumps_exact(doc)
    out.documents.append(Document(name, line, doc, raw))

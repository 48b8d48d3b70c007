"""Turning client-supplied ``USER_TOKEN`` and ``uri`` into safe object names.

The original used both raw in file names and keys (a ``/`` gave a 500, ``../../x`` escaped
its cache directory). Here neither ever reaches a file path (blobs are named by a random
id), and in object keys:

- the user must be printable text without ``/``, ``\\``, control characters, and must not
  be ``.`` or ``..``: otherwise 400 (refused, not rewritten, so two users never merge);
- the uri must be printable (no control characters) and at most ``MAX_URI`` characters;
  only its last path segment reaches the key, with query and fragment stripped and every
  character outside ``[A-Za-z0-9._-]`` replaced by ``_``.

Specimen keys keep the original's shape, ``<user>/YYYY/MM/DD/<base>.<ts><ext>``, where
``ts`` is the receive time in nanoseconds made unique per gateway: microseconds that never
repeat within a process, and the worker index in the last three digits.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from urllib.parse import quote, urlsplit

from sluiceway.errors import BadRequest, Unauthorized
from sluiceway.record import UTC

MAX_USER_BYTES = 256
MAX_URI = 4096
MAX_BASE = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))

CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".svg": "image/svg+xml", ".json": "application/json", ".html": "text/html",
    ".htm": "text/html", ".xml": "application/xml", ".txt": "text/plain", ".log": "text/plain",
    ".css": "text/css", ".js": "text/javascript", ".pdf": "application/pdf", ".zip": "application/zip",
    ".gz": "application/gzip", ".mp4": "video/mp4", ".webm": "video/webm",
}
# Content types that say nothing about the body (curl's default for -d/--data-binary among them).
GENERIC_TYPES = frozenset({"", "application/octet-stream", "application/x-www-form-urlencoded"})


def check_user(raw: bytes | None) -> str:
    """The ``USER_TOKEN`` value as a user name; 401 if missing/empty, 400 if unsafe."""
    if not raw or not raw.strip():
        raise Unauthorized("USER_TOKEN header is required")
    try:
        user = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest("USER_TOKEN must be UTF-8 text") from None
    if len(raw) > MAX_USER_BYTES:
        raise BadRequest(f"USER_TOKEN is longer than {MAX_USER_BYTES} bytes")
    if "/" in user or "\\" in user or _CONTROL.search(user) or user in (".", ".."):
        raise BadRequest("USER_TOKEN must not contain '/', '\\' or control characters, nor be '.' or '..'")
    return user


def check_uri(uri: str | None) -> str:
    if not uri:
        raise BadRequest("uri parameter is required")
    if len(uri) > MAX_URI:
        raise BadRequest(f"uri is longer than {MAX_URI} characters")
    if _CONTROL.search(uri):
        raise BadRequest("uri must not contain control characters")
    return uri


def split_uri(uri: str) -> tuple[str, str]:
    """(base, ext) of the uri's last path segment: query and fragment stripped, base made
    safe for a key; ``.png`` for extension-less screenshot uris, as the original did."""
    try:
        path = urlsplit(uri).path
    except ValueError:
        path = uri.split("?", 1)[0].split("#", 1)[0]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    base, dot, ext = last.rpartition(".")
    if not dot or not base:
        base, ext = last, ""
    else:
        ext = "." + ext
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,10}", ext or ".x"):
        base, ext = last, ""
    if not ext and "screenshot" in uri.lower():
        ext = ".png"
    base = _UNSAFE.sub("_", base)[:MAX_BASE].strip(".") or "specimen"
    return base, ext.lower()


def content_type(header: str, ext: str) -> str:
    """The request's Content-Type unless it is generic, else the type of ``ext``."""
    mt = header.split(";", 1)[0].strip().lower()
    if mt not in GENERIC_TYPES and "/" in mt and not _CONTROL.search(header):
        return header.strip()
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def metadata_value(value: str) -> str:
    """S3 user metadata travels in HTTP headers: percent-encode what is not printable ASCII."""
    return quote(value, safe=_PRINTABLE_ASCII)


def specimen_name(user: str, uri: str, received: datetime, ts_ns: int) -> tuple[str, str]:
    """(object name, extension) for a specimen received at ``received``."""
    base, ext = split_uri(uri)
    return f"{user}/{received:%Y/%m/%d}/{base}.{ts_ns}{ext}", ext


class UniqueClock:
    """Nanosecond timestamps that never repeat within one gateway: microsecond resolution,
    strictly increasing per process, the worker index (0–999) in the last three digits."""

    def __init__(self, worker: int = 0):
        self.worker = worker % 1000
        self._last_us = 0

    def next(self) -> tuple[datetime, int]:
        us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = us
        return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000), us * 1000 + self.worker

"""Ids and object names of LDOs.

The id keeps the original's form, ``ldo_<12 hex>_<unix seconds>``. With a file, the 12 hex
are the last 12 of its blob spool key (random bits of a UUIDv7), so the file can be found in
the spool (``spool_suffix``) until the attachments sink has delivered it, with no column for
it; without a file they are random.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
ID_RE = re.compile(r"ldo_([0-9a-f]{12})_\d+\Z")


def new_id(created: datetime, blob_key: str | None) -> str:
    hex12 = blob_key[-12:] if blob_key else uuid.uuid4().hex[:12]
    return f"ldo_{hex12}_{int(created.timestamp())}"


def spool_suffix(ldo_id: str) -> str | None:
    m = ID_RE.match(ldo_id)
    return m.group(1) if m else None


def safe_filename(filename: str | None) -> str:
    """A file name fit for an object key segment and a header: the base name only, A-Z a-z
    0-9 . _ - (others become ``_``), no leading dot, at most 100 characters plus a short
    extension; ``file`` when nothing is left."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(_UNSAFE.sub("_", base).lstrip("."))
    if len(ext) > 17:
        stem, ext = stem + ext, ""
    return (stem[:100] + ext) or "file"


def object_name(tenant: str, created: datetime, ldo_id: str, filename: str | None) -> str:
    """The attachment's suggested name: ``ldo/<tenant>/<yyyy>/<mm>/<dd>/<id>/<file name>``."""
    return f"ldo/{tenant}/{created:%Y/%m/%d}/{ldo_id}/{safe_filename(filename)}"


def content_disposition(filename: str | None) -> str:
    """``inline`` with the safe name, and the original base name (RFC 5987) when it differs."""
    safe = safe_filename(filename)
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if base and base != safe:
        return f"inline; filename=\"{safe}\"; filename*=UTF-8''{quote(base, safe='')}"
    return f'inline; filename="{safe}"'

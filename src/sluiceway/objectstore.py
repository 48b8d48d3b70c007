"""A thin async wrapper around obstore: one local directory or one S3 bucket (+ prefix).

Used by the object-store sink now and by bucket collectors later. What it adds to obstore:

- one constructor, ``open_store(local_path=…)`` or ``open_store(s3=S3Connection(…))``;
- keys are relative to the connection's ``prefix`` (put and get take them, list returns them);
- every failure is classified in one place, ``classify(exc)``, into ``TransientError``
  (network, timeouts, 5xx, 429) or ``PermanentError`` (auth, 403, NoSuchBucket, 400, bad
  key). The one exception: ``get``/``head`` of a missing key raise ``FileNotFoundError``,
  and ``exists`` answers False;
- ``put_file`` streams from disk, with a multipart upload above ``MULTIPART_THRESHOLD``
  (memory stays around ``PART_SIZE * PART_CONCURRENCY``); ``open`` streams an object (or a
  byte range of it) back;
- content type, content encoding and user metadata are sent where the store keeps them
  (S3) and silently dropped where it cannot (local directories).

Writes are atomic on both: S3 PUTs are, and on a local directory ``put`` and ``put_file``
write a staging file in the same directory and rename it (``fsutil.write_atomic``). They also
make it durable: the file and every directory entry created for it are fsynced before they
return, as a sink must before its batch is acknowledged (obstore's own local store does not
sync). Local parent directories are created as needed.

obstore is imported lazily, inside functions; a local store that is only written to never
loads it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from sluiceway.errors import PermanentError, SinkError, TransientError
from sluiceway.fsutil import copy_atomic, remove_staging, write_atomic
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.config.blocks import Destination, S3Connection

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # above this, uploads are multipart
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4  # parts in flight per upload → ≤ 32 MiB buffered

__all__ = [
    "MULTIPART_THRESHOLD",
    "ObjectInfo",
    "ObjectStore",
    "classify",
    "open_destination",
    "open_store",
]


class ObjectInfo(NamedTuple):
    key: str  # relative to the store's prefix
    size: int
    last_modified: datetime
    etag: str | None


# ---------------------------------------------------------------------------- classify

_TRANSIENT_STATUS = {408, 425, 429}
_TRANSIENT_CODES = {
    "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "OperationAborted",
}
_PERMANENT_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "InvalidBucketName", "AllBucketsDisabled", "AccountProblem", "InvalidRequest",
    "InvalidArgument", "EntityTooLarge", "KeyTooLongError", "MethodNotAllowed",
    "ExpiredToken", "InvalidToken", "MissingSecurityHeader", "InvalidObjectState",
}
_TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR}
if hasattr(errno, "EDQUOT"):
    _TRANSIENT_ERRNOS.add(errno.EDQUOT)
_PERMANENT_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST,
}

_STATUS_RE = re.compile(r"status(?: code)?:? (\d{3})\b", re.I)
_CODE_RE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(r"<Message>([^<]*)</Message>")
_LOCAL_UNFIT = re.compile(r"[\x00-\x1f\x7f]|#\d+\Z")  # see ObjectStore._local_path
_OS_ERROR_RE = re.compile(r"\(os error (\d+)\)")  # obstore's OSErrors carry errno only in the text
_T = TypeVar("_T")
log = get_logger("sluiceway.objectstore")


def _summary(exc: BaseException) -> tuple[str, int | None, str | None]:
    """A one-line message (no debug dump, no XML), the HTTP status and the S3 error code."""
    text = str(exc)
    status_m = _STATUS_RE.search(text)
    code_m = _CODE_RE.search(text)
    msg_m = _MESSAGE_RE.search(text)
    short = text.split("\n\nDebug source", 1)[0].split("<?xml", 1)[0].strip().rstrip(":").strip()
    if code_m:
        short += f" [{code_m.group(1)}" + (f": {msg_m.group(1)}" if msg_m and msg_m.group(1) else "") + "]"
    short = " ".join(short.split()) or type(exc).__name__
    if len(short) > 600:
        short = short[:597] + "..."
    return short, int(status_m.group(1)) if status_m else None, code_m.group(1) if code_m else None


def _obstore_kind(exc: BaseException) -> Literal["transient", "permanent"] | None:
    if not type(exc).__module__.startswith("obstore"):
        return None
    from obstore import exceptions as oe

    permanent = (
        oe.PermissionDeniedError, oe.UnauthenticatedError, oe.AlreadyExistsError,
        oe.PreconditionError, oe.NotModifiedError, oe.InvalidPathError, oe.NotSupportedError,
        oe.UnknownConfigurationKeyError,
    )
    if isinstance(exc, permanent):
        return "permanent"
    if isinstance(exc, oe.JoinError):
        return "transient"
    return None  # GenericError and friends: decided by status / code / text


def classify(exc: BaseException, context: str = "") -> SinkError:
    """Turn any exception from a store operation into ``TransientError`` or ``PermanentError``.

    Returns the error (the caller raises it, ``from exc``). A ``SinkError`` is returned as is.
    The message is one line: what was done (``context``), the store's summary and the S3
    error code when there is one; never credentials.
    """
    if isinstance(exc, SinkError):
        return exc
    short, status, code = _summary(exc)
    message = f"{context}: {short}" if context else short
    kind = _obstore_kind(exc)
    if kind is None:
        kind = _kind_of(exc, short, status, code)
    return TransientError(message) if kind == "transient" else PermanentError(message)


def _kind_of(exc: BaseException, text: str, status: int | None, code: str | None) -> Literal["transient", "permanent"]:
    if code in _TRANSIENT_CODES:
        return "transient"
    if code in _PERMANENT_CODES:
        return "permanent"
    if status is not None:
        if status >= 500 or status in _TRANSIENT_STATUS:
            return "transient"
        if 400 <= status < 500:
            return "permanent"
    if isinstance(exc, (FileNotFoundError, PermissionError, NotImplementedError, IsADirectoryError)):
        return "permanent"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    if isinstance(exc, OSError):
        os_error = _OS_ERROR_RE.search(text)
        number = exc.errno if exc.errno is not None else int(os_error.group(1)) if os_error else None
        if number in _PERMANENT_ERRNOS:
            return "permanent"
        if number in _TRANSIENT_ERRNOS:
            return "transient"
    if isinstance(exc, (ValueError, TypeError)):  # bad key, bad argument: same again fails
        return "permanent"
    # No status: connection refused/reset, DNS, timeouts ("error sending request", "timed
    # out"), or something new. Retrying is the safe default: nothing is dropped.
    return "transient"


# ------------------------------------------------------------------------------ store


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"invalid object key {key!r}: empty, or leading/trailing '/'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid object key {key!r}: empty, '.' or '..' segment")
    return key


class ObjectStore:
    """One local directory or one S3 bucket (+ prefix). Build it with ``open_store``."""

    def __init__(self, inner: Any, *, kind: Literal["local", "s3"], prefix: str = "",
                 root: Path | None = None, description: str = ""):
        self._obstore = inner  # for a local store None until a read, list or delete needs it
        self.kind = kind
        self.prefix = prefix.strip("/")
        self.root = root  # local directory, for kind == "local"
        self.description = description
        self.closed = False

    def __repr__(self) -> str:
        return f"<ObjectStore {self.kind} {self.description}>"

    @property
    def supports_attributes(self) -> bool:
        """Whether content type, content encoding and metadata are stored (S3: yes, local: no)."""
        return self.kind != "local"

    # -- keys

    def full_key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, path: str) -> str:
        if self.prefix and path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1:]
        return path

    def _attributes(self, content_type: str | None, content_encoding: str | None,
                    metadata: dict[str, str] | None) -> dict[str, str] | None:
        if not self.supports_attributes:
            return None
        attrs: dict[str, str] = {}
        if content_type:
            attrs["Content-Type"] = content_type
        if content_encoding:
            attrs["Content-Encoding"] = content_encoding
        for k, v in (metadata or {}).items():
            attrs[k] = str(v)
        return attrs or None

    def _local_path(self, key: str) -> Path:
        """Where ``key`` lives on a local store; refuses what obstore's local store refuses
        (control characters, and a name ending in ``#<digits>``: a staging file's)."""
        assert self.root is not None
        full = self.full_key(key)
        if _LOCAL_UNFIT.search(full):
            raise ValueError(f"invalid object key {key!r} for a local store: a control character, "
                             "or a name ending in '#' and digits")
        return self.root / full

    @property
    def _inner(self) -> Any:
        """obstore's store object. A local store writes without it (``_local_write``), so a
        process that only writes objects never loads obstore (about 4 MB of the delivery process)."""
        if self._obstore is None:
            from obstore.store import LocalStore

            self._obstore = LocalStore(self.root, mkdir=True)
        return self._obstore

    def _where(self, op: str, key: str) -> str:
        return f"{op} {key!r} on {self.kind} {self.description}"

    # -- operations

    async def put(self, key: str, data: bytes | bytearray | memoryview, *,
                  content_type: str | None = None, content_encoding: str | None = None,
                  metadata: dict[str, str] | None = None, resent: bool = False) -> None:
        """Write ``data`` at ``key`` atomically (overwrites); on a local store, durably.

        ``resent``: the caller writes ``key`` again after a process that was writing it died (a
        sink's ``Batch.resent``), and no one else writes it now. On a local store the staging
        files that process may have left beside the object are deleted first
        (``fsutil.remove_staging``, logged). S3 keeps nothing of a PUT that never completed."""
        try:
            if self.kind == "local":
                path = self._local_path(key)
                await asyncio.to_thread(_local_write, path, lambda: write_atomic(path, data), resent, key)
                return
            import obstore

            await obstore.put_async(
                self._inner, self.full_key(key), data,
                attributes=self._attributes(content_type, content_encoding, metadata),
                use_multipart=len(data) > MULTIPART_THRESHOLD,
                chunk_size=PART_SIZE, max_concurrency=PART_CONCURRENCY,
            )
        except Exception as exc:
            raise classify(exc, self._where("put", key)) from exc

    async def put_file(self, key: str, path: str | os.PathLike[str], *,
                       content_type: str | None = None, content_encoding: str | None = None,
                       metadata: dict[str, str] | None = None, resent: bool = False) -> int:
        """Stream a local file to ``key``; multipart above ``MULTIPART_THRESHOLD``.

        Returns the number of bytes uploaded. A missing source file raises
        ``FileNotFoundError`` (the caller's problem, not the store's). ``resent``: as for ``put``.
        """
        source = Path(path)
        size = source.stat().st_size
        try:
            if self.kind == "local":
                dest = self._local_path(key)
                return await asyncio.to_thread(_local_write, dest, lambda: copy_atomic(source, dest), resent, key)
            import obstore

            await obstore.put_async(
                self._inner, self.full_key(key), source,
                attributes=self._attributes(content_type, content_encoding, metadata),
                use_multipart=size > MULTIPART_THRESHOLD,
                chunk_size=PART_SIZE, max_concurrency=PART_CONCURRENCY,
            )
        except Exception as exc:
            raise classify(exc, self._where("put_file", key)) from exc
        return size

    async def get(self, key: str) -> bytes:
        """The whole object. Missing key: ``FileNotFoundError``."""
        import obstore

        try:
            result = await obstore.get_async(self._inner, self.full_key(key))
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise classify(exc, self._where("get", key)) from exc

    async def get_with_attributes(self, key: str) -> tuple[bytes, dict[str, str]]:
        """The object and its stored attributes (Content-Type, Content-Encoding, metadata)."""
        import obstore

        try:
            result = await obstore.get_async(self._inner, self.full_key(key))
            return bytes(await result.bytes_async()), dict(result.attributes)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise classify(exc, self._where("get", key)) from exc

    async def open(self, key: str, *, byte_range: tuple[int, int] | None = None,
                   chunk_size: int = 1024 * 1024) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        """Stream ``key`` (or its bytes ``[start, end)``) without holding it whole: the info of
        the version being read, and its chunks. Missing key: ``FileNotFoundError``; every other
        failure, also while streaming, is classified."""
        import obstore

        where = self._where("get", key)
        try:
            result = await obstore.get_async(self._inner, self.full_key(key),
                                             options={"range": byte_range} if byte_range is not None else {})
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise classify(exc, where) from exc

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in result.stream(min_chunk_size=chunk_size):
                    yield bytes(chunk)
            except Exception as exc:
                raise classify(exc, where) from exc

        return self._info(result.meta), chunks()

    async def head(self, key: str) -> ObjectInfo:
        """Size, time and ETag of ``key``. Missing key: ``FileNotFoundError``."""
        import obstore

        try:
            meta = await obstore.head_async(self._inner, self.full_key(key))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise classify(exc, self._where("head", key)) from exc
        return self._info(meta)

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except FileNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        import obstore

        try:
            await obstore.delete_async(self._inner, self.full_key(key))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise classify(exc, self._where("delete", key)) from exc

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix`` (recursive; whole path segments: ``a/b`` matches
        ``a/b/x`` but not ``a/bc``). Order is the store's (S3: lexicographic)."""
        import obstore

        prefix = prefix.strip("/")
        try:
            if prefix:
                _check_key(prefix)
            full = "/".join(p for p in (self.prefix, prefix) if p) or None
            stream = obstore.list(self._inner, full, chunk_size=1000)
            async for chunk in stream:
                for meta in chunk:
                    yield self._info(meta)
        except Exception as exc:
            raise classify(exc, self._where("list", prefix)) from exc

    async def check(self) -> None:
        """Raise a classified error unless the store is reachable and usable."""
        if self.kind == "local":
            assert self.root is not None
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=self.root, prefix=".sluice-check-"):
                    pass
            except Exception as exc:
                raise classify(exc, f"write check on local {self.description}") from exc
            return
        import obstore

        try:
            stream = obstore.list(self._inner, self.prefix or None, chunk_size=1)
            async for _ in stream:
                break
        except Exception as exc:
            raise classify(exc, f"list check on s3 {self.description}") from exc

    async def aclose(self) -> None:
        """Nothing to release today (obstore pools connections per store); safe twice."""
        self.closed = True

    def _info(self, meta: Any) -> ObjectInfo:
        return ObjectInfo(self._relative(meta["path"]), int(meta["size"]), meta["last_modified"], meta.get("e_tag"))


def _local_write(path: Path, write: Callable[[], _T], resent: bool, key: str) -> _T:
    """``write()`` (an atomic write of ``path``), after deleting what an interrupted write of
    ``path`` left beside it when ``resent``."""
    if resent:
        removed = remove_staging(path)
        if removed:
            log.info("removed staging files an interrupted write left", key=key, files=removed)
    return write()


def open_destination(dest: "Destination", default_dir: Path) -> ObjectStore:
    """The store a sink's ``path`` / ``s3`` settings name (``default_dir`` when neither)."""
    if dest.s3 is not None:
        return open_store(s3=dest.s3)
    return open_store(local_path=Path(dest.path) if dest.path else default_dir)


def open_store(local_path: Path | str | None = None, s3: "S3Connection | None" = None) -> ObjectStore:
    """A store for a local directory (created if missing) or an S3 connection; exactly one."""
    if (local_path is None) == (s3 is None):
        raise ValueError("open_store needs exactly one of local_path or s3")
    if local_path is not None:
        root = Path(local_path).expanduser().resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except Exception as exc:
            raise classify(exc, f"open local store {root}") from exc
        return ObjectStore(None, kind="local", root=root, description=str(root))

    assert s3 is not None
    from obstore.store import S3Store

    config: dict[str, Any] = {"region": s3.region, "virtual_hosted_style_request": not s3.use_path_style}
    if s3.endpoint:
        config["endpoint"] = s3.endpoint
    if s3.access_key_id is not None and s3.secret_access_key is not None:
        config["access_key_id"] = s3.access_key_id
        config["secret_access_key"] = s3.secret_access_key.get_secret_value()
    if s3.session_token is not None:
        config["session_token"] = s3.session_token.get_secret_value()
    client_options: dict[str, Any] = {
        "allow_http": s3.use_http,
        "connect_timeout": timedelta(seconds=s3.connect_timeout),
        "timeout": timedelta(seconds=s3.timeout),
    }
    retry_config: dict[str, Any] = {
        "max_retries": s3.max_retries,
        "retry_timeout": timedelta(seconds=min(300.0, 2 * s3.timeout)),
        "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
    }
    try:
        inner = S3Store(s3.bucket, config=config, client_options=client_options, retry_config=retry_config)
    except Exception as exc:
        raise classify(exc, f"open s3 store {s3.describe()}") from exc
    return ObjectStore(inner, kind="s3", prefix=s3.prefix, description=s3.describe())

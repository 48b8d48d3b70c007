from __future__ import annotations

import errno
import hashlib
import os
import sys
from pathlib import Path

import pytest
from obstore import exceptions as oe
from pydantic import ValidationError

from sluiceway.config.blocks import S3Connection
from sluiceway.errors import PermanentError, TransientError
from sluiceway.objectstore import MULTIPART_THRESHOLD, ObjectInfo, classify, open_store

XML_403 = (
    "Generic S3 error: Error performing PUT http://127.0.0.1:9/b/x in 1ms - Server returned non-2xx "
    'status code: 403 Forbidden: <?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch'
    "</Code><Message>The request signature we calculated does not match</Message></Error>\n\n"
    "Debug source:\nGeneric {\n    store: \"S3\", ... }"
)


# ---------------------------------------------------------------------- S3Connection


def test_s3_connection_defaults_follow_endpoint():
    aws = S3Connection(bucket="logs")
    assert (aws.use_path_style, aws.use_http, aws.prefix, aws.region) == (False, False, "", "us-east-1")
    local = S3Connection(bucket="logs", endpoint="http://127.0.0.1:8333/", prefix="/a/b/")
    assert (local.use_path_style, local.use_http) == (True, True)
    assert local.endpoint == "http://127.0.0.1:8333" and local.prefix == "a/b"
    tls = S3Connection(bucket="logs", endpoint="https://s3.example.com", path_style=False)
    assert (tls.use_path_style, tls.use_http) == (False, False)
    assert S3Connection(bucket="logs", endpoint="https://x.example", allow_http=True).use_http


def test_s3_connection_durations_and_validation():
    c = S3Connection(bucket="logs", timeout="2m", connect_timeout="500ms")
    assert (c.timeout, c.connect_timeout) == (120.0, 0.5)
    for bad in (
        {"bucket": "logs", "endpoint": "127.0.0.1:8333"},
        {"bucket": "logs", "access_key_id": "only-the-key"},
        {"bucket": "logs", "session_token": "t"},
        {"bucket": "a"},
        {"bucket": "logs", "prefix": "a//b"},
        {"bucket": "logs", "prefix": "a/../b"},
        {"bucket": "logs", "max_retries": -1},
        {"bucket": "logs", "unknown": 1},
    ):
        with pytest.raises(ValidationError):
            S3Connection.model_validate(bad)


def test_s3_secrets_are_never_printed():
    c = S3Connection(bucket="logs", access_key_id="AKIDEXAMPLE", secret_access_key="s3cr3t-value",
                     session_token="t0ken-value")
    for text in (repr(c), str(c), c.model_dump_json(), str(c.model_dump()), c.describe()):
        assert "s3cr3t-value" not in text and "t0ken-value" not in text
    assert c.secret_access_key is not None and c.secret_access_key.get_secret_value() == "s3cr3t-value"
    store = open_store(s3=c)  # no network at construction
    assert "s3cr3t" not in repr(store) and store.kind == "s3" and store.supports_attributes


def test_open_store_needs_exactly_one(tmp_path: Path):
    with pytest.raises(ValueError):
        open_store()
    with pytest.raises(ValueError):
        open_store(local_path=tmp_path, s3=S3Connection(bucket="logs"))


def test_obstore_is_imported_lazily():
    import subprocess

    code = ("import sys, sluiceway.objectstore, sluiceway.sinks.object_store, sluiceway.sinks.encoding; "
            "print('obstore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_writing_a_local_store_does_not_load_obstore(tmp_path: Path):
    """The delivery process of the default configuration only writes objects: no obstore."""
    import subprocess

    code = ("import asyncio, sys; from sluiceway.objectstore import open_store; "
            f"s = open_store(local_path={str(tmp_path / 'objects')!r}); "
            "asyncio.run(s.put('a/b.txt', b'x')); asyncio.run(s.check()); print('obstore' in sys.modules); "
            "asyncio.run(s.get('a/b.txt')); print('obstore' in sys.modules); "
            "from sluiceway.runtime.finish import finish; finish(0)")  # as `sluice` ends
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]  # a read loads it
    assert (tmp_path / "objects" / "a" / "b.txt").read_bytes() == b"x"


# ------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (oe.GenericError(XML_403), PermanentError),
        (oe.GenericError("Server returned non-2xx status code: 503 Service Unavailable: "), TransientError),
        (oe.GenericError("Server returned non-2xx status code: 500 Internal Server Error: "), TransientError),
        (oe.GenericError("Server returned non-2xx status code: 429 Too Many Requests: "), TransientError),
        (oe.GenericError("Server returned non-2xx status code: 400 Bad Request: <Code>InvalidBucketName</Code>"),
         PermanentError),
        (oe.GenericError("status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>"), PermanentError),
        (oe.GenericError("status code: 503 x <Error><Code>SlowDown</Code></Error>"), TransientError),
        (oe.GenericError("Error performing PUT http://127.0.0.1:1/b/x - HTTP error: error sending request"),
         TransientError),
        (oe.GenericError("HTTP error: operation timed out"), TransientError),
        (oe.GenericError("something nobody has seen before"), TransientError),
        (oe.PermissionDeniedError("denied"), PermanentError),
        (oe.UnauthenticatedError("who are you"), PermanentError),
        (oe.AlreadyExistsError("exists"), PermanentError),
        (oe.InvalidPathError("bad path"), PermanentError),
        (oe.JoinError("tokio"), TransientError),
        (TimeoutError(), TransientError),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TransientError),
        (PermissionError(errno.EACCES, "no"), PermanentError),
        (FileNotFoundError(errno.ENOENT, "gone"), PermanentError),
        (OSError(errno.ENOSPC, "disk full"), TransientError),
        (OSError("Not a directory (os error 20)"), PermanentError),
        (OSError("No space left on device (os error 28)"), TransientError),
        (NotImplementedError("attributes"), PermanentError),
        (ValueError("Could not parse path"), PermanentError),
        (RuntimeError("?"), TransientError),
    ],
)
def test_classify(exc: Exception, kind: type):
    err = classify(exc, "put 'k'")
    assert type(err) is kind
    assert str(err).startswith("put 'k'")


def test_classify_message_is_short_and_keeps_the_s3_code():
    err = classify(oe.GenericError(XML_403))
    text = str(err)
    assert "Debug source" not in text and "<?xml" not in text and "\n" not in text
    assert "403" in text and "SignatureDoesNotMatch" in text


def test_classify_passes_sink_errors_through():
    e = TransientError("x", retry_after=3)
    assert classify(e) is e


# ----------------------------------------------------------------------- local store


async def test_local_store_basics(tmp_path: Path):
    root = tmp_path / "not" / "yet" / "there"
    store = open_store(local_path=root)
    assert root.is_dir() and store.kind == "local" and not store.supports_attributes
    await store.put("a/b/c.txt", b"hello", content_type="text/plain", metadata={"x": "1"})  # attrs dropped
    await store.put("a/d.txt", b"world")
    assert (root / "a" / "b" / "c.txt").read_bytes() == b"hello"
    assert await store.get("a/b/c.txt") == b"hello"
    data, attrs = await store.get_with_attributes("a/d.txt")
    assert data == b"world" and attrs == {}
    info = await store.head("a/b/c.txt")
    assert isinstance(info, ObjectInfo) and info.key == "a/b/c.txt" and info.size == 5
    assert await store.exists("a/d.txt") and not await store.exists("a/nope")
    assert sorted(i.key for i in [i async for i in store.list()]) == ["a/b/c.txt", "a/d.txt"]
    assert [k for k, *_ in [i async for i in store.list("a/b")]] == ["a/b/c.txt"]
    assert [i async for i in store.list("a/b/c")] == []
    with pytest.raises(FileNotFoundError):
        await store.get("a/nope")
    with pytest.raises(FileNotFoundError):
        await store.head("a/nope")
    await store.put("a/d.txt", b"again")  # overwrite
    assert await store.get("a/d.txt") == b"again"
    await store.delete("a/d.txt")
    await store.delete("a/d.txt")  # deleting a missing key is fine
    assert not await store.exists("a/d.txt")
    await store.check()
    await store.aclose()
    await store.aclose()


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a/"])
async def test_bad_keys_are_permanent(tmp_path: Path, key: str):
    store = open_store(local_path=tmp_path)
    with pytest.raises(PermanentError):
        await store.put(key, b"x")
    with pytest.raises(PermanentError):
        await store.get(key)


async def test_local_put_file_large_is_identical_and_leaves_no_temp_files(tmp_path: Path):
    src = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with open(src, "wb") as f:
        for i in range(20):
            f.write(bytes([i]) + block[1:])
    assert src.stat().st_size > MULTIPART_THRESHOLD
    store = open_store(local_path=tmp_path / "store")
    size = await store.put_file("files/big.bin", src, content_type="application/octet-stream")
    assert size == src.stat().st_size
    got = await store.get("files/big.bin")
    assert hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()
    small = tmp_path / "small.txt"
    small.write_bytes(b"tiny")
    assert await store.put_file("files/small.txt", small) == 4
    files = sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert files == ["files/big.bin", "files/small.txt"]
    with pytest.raises(FileNotFoundError):
        await store.put_file("files/missing", tmp_path / "missing")


def test_local_store_in_the_way_is_permanent(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermanentError):
        open_store(local_path=blocker / "sub")


async def test_local_check_fails_when_directory_is_gone(tmp_path: Path):
    root = tmp_path / "objects"
    store = open_store(local_path=root)
    root.rmdir()
    root.parent.joinpath("objects").write_text("now a file")
    with pytest.raises(PermanentError):
        await store.check()


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch, fail: OSError | None = None) -> list[str]:
    """Paths of every fsync from now on (the real one runs, unless ``fail`` is raised)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        if fail is not None:
            raise fail
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
async def test_local_put_is_durable_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "objects"
    store = open_store(local_path=root)
    synced = _record_fsyncs(monkeypatch)
    await store.put("a/b/c.jsonl.gz", b"batch")
    # the data (in its staging file, before the rename), then every directory entry made for it
    assert synced[-1] == str(root / "a" / "b")
    assert synced[-2].startswith(str(root / "a" / "b" / "c.jsonl.gz#"))
    assert set(synced[:-2]) == {str(root), str(root / "a")}
    synced.clear()
    src = tmp_path / "blob"
    src.write_bytes(b"x" * 3_000_000)
    assert await store.put_file("a/b/blob", src) == 3_000_000
    assert synced[0].startswith(str(root / "a" / "b" / "blob#")) and synced[1:] == [str(root / "a" / "b")]
    assert (root / "a" / "b" / "blob").read_bytes() == src.read_bytes()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
async def test_local_put_that_cannot_sync_keeps_the_old_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "objects"
    store = open_store(local_path=root)
    await store.put("a/k", b"old")
    _record_fsyncs(monkeypatch, fail=OSError(errno.EIO, "I/O error"))
    with pytest.raises(TransientError):
        await store.put("a/k", b"new")
    monkeypatch.undo()
    assert (root / "a" / "k").read_bytes() == b"old"
    assert [p.name for p in (root / "a").iterdir()] == ["k"]  # no staging file left


async def test_local_listing_leaves_out_staging_files(tmp_path: Path):
    store = open_store(local_path=tmp_path)
    await store.put("s/one", b"1")
    (tmp_path / "s" / "two#8812345").write_bytes(b"left by a crash mid-write")
    assert [i.key async for i in store.list()] == ["s/one"]


@pytest.mark.parametrize("key", ["a/b#12", "a/\x00z", "a/\nq"])
async def test_local_store_refuses_keys_obstore_would(tmp_path: Path, key: str):
    store = open_store(local_path=tmp_path)
    with pytest.raises(PermanentError):
        await store.put(key, b"x")
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(PermanentError):
        await store.put_file(key, src)
    await store.put("a/b#x", b"fine")  # a '#' not followed by digits alone is a plain name
    assert [i.key async for i in store.list("a")] == ["a/b#x"]

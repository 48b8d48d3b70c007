import hashlib

import pytest

from sluiceway.blobs import FLUSH_BYTES, BlobSpool
from sluiceway.errors import PayloadTooLarge
from sluiceway.http.body import ClientDisconnected


def receiver(chunks, disconnect=False):
    msgs = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or disconnect}
            for i, c in enumerate(chunks)]
    if disconnect:
        msgs.append({"type": "http.disconnect"})

    async def receive():
        return msgs.pop(0)

    return receive


async def test_streams_whole_body_durably(tmp_path):
    spool = BlobSpool(tmp_path)
    chunks = [bytes([i]) * 70_000 for i in range(40)]  # > FLUSH_BYTES in total
    blob = await spool.receive(receiver(chunks), 10 * FLUSH_BYTES, None)
    data = b"".join(chunks)
    assert blob.size == len(data) and blob.sha256 == hashlib.sha256(data).hexdigest()
    assert spool.path(blob.key).read_bytes() == data
    assert not list(spool.tmp.iterdir())
    assert spool.stats() == (1, len(data))


async def test_empty_body_is_a_blob(tmp_path):
    blob = await BlobSpool(tmp_path).receive(receiver([b""]), 10, None)
    assert blob.size == 0 and blob.path.read_bytes() == b""


@pytest.mark.parametrize("disconnect", [True, False])
async def test_nothing_left_on_failure(tmp_path, disconnect):
    spool = BlobSpool(tmp_path)
    with pytest.raises(ClientDisconnected if disconnect else PayloadTooLarge):
        await spool.receive(receiver([b"x" * 100, b"y" * 100], disconnect=disconnect), 150 if not disconnect else 10**6, None)
    assert not list(spool.tmp.iterdir()) and spool.stats() == (0, 0)
    with pytest.raises(PayloadTooLarge):
        await spool.receive(receiver([b"x"]), 10, content_length=11)


def test_purge_partials(tmp_path):
    spool = BlobSpool(tmp_path)
    spool.open()
    (spool.tmp / "abc.part").write_bytes(b"half")
    assert spool.purge_partials() == 1 and not list(spool.tmp.iterdir())


async def test_done_deletes_once_every_sink_has_it(tmp_path):
    spool = BlobSpool(tmp_path)
    blob = await spool.receive(receiver([b"data"]), 100, None)
    assert not spool.done(blob.key, "a", ["a", "b"])
    assert blob.path.exists() and spool.has_done(blob.key, "a")
    assert spool.done(blob.key, "b", ["a", "b"])
    assert not blob.path.exists() and not list(spool.root.glob("*.done"))
    other = await spool.receive(receiver([b"x"]), 100, None)
    assert spool.done(other.key, "only", ["only"]) and not other.path.exists()


@pytest.mark.parametrize("key", ["", "../x", "a/b", ".hidden"])
def test_invalid_keys(tmp_path, key):
    with pytest.raises(ValueError):
        BlobSpool(tmp_path).path(key)

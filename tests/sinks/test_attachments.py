import orjson
import pytest

from sluiceway.config.loader import validate_tree
from sluiceway.errors import PermanentError
from sluiceway.sinks.attachments import AttachmentsSink, AttachmentsSinkConfig
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.errors import ConfigError
from tests.test_blobs import receiver


def sink(tmp_path, name="att", peers=("att",), peer_streams=None, **cfg):
    c = AttachmentsSinkConfig(name=name, path=str(tmp_path / f"out-{name}"), **cfg)
    ctx = SinkContext(data_dir=tmp_path / "data", store=None, attachment_sinks=peers,
                      attachment_streams=peer_streams or {})
    return AttachmentsSink(name, c, ctx)


async def spooled(tmp_path, data: bytes, name="u/x.png"):
    s = sink(tmp_path)
    blob = await s.spool.receive(receiver([data]), 1 << 20, None)
    doc = {"id": "01900000-0000-7000-8000-000000000001", "tenant": "acme", "stream": "specimen",
           "received_at": "2026-11-23T10:11:12.000001Z", "payload": {},
           "attachments": [{"key": blob.key, "sha256": blob.sha256, "size": blob.size, "content_type": "image/png",
                            "name": name, "metadata": {"uri": "http://e/x.png"}}]}
    return blob, Batch("p", 1, 1, docs=[doc], raw=[orjson.dumps(doc)])


async def test_uploads_and_releases_the_blob(tmp_path):
    blob, batch = await spooled(tmp_path, b"png-data")
    s = sink(tmp_path)
    await s.send(batch)
    key = f"attachments/acme/2026/11/23/{blob.key}/u/x.png"
    assert (tmp_path / "out-att" / key).read_bytes() == b"png-data"
    assert not blob.path.exists()
    await s.send(batch)  # re-delivery after a crash: the object is there, the blob gone → fine


async def test_a_resent_batch_removes_what_an_interrupted_upload_left(tmp_path):
    blob, batch = await spooled(tmp_path, b"png-data")
    obj = tmp_path / "out-att" / f"attachments/acme/2026/11/23/{blob.key}/u/x.png"
    obj.parent.mkdir(parents=True)
    leftover = obj.with_name("x.png#8731")  # a process killed while copying the blob into place
    leftover.write_bytes(b"png")
    resent = Batch(batch.partition, batch.first_offset, batch.last_offset, docs=batch.docs, raw=batch.raw,
                   resent=True)
    await sink(tmp_path).send(resent)
    assert obj.read_bytes() == b"png-data"
    assert sorted(p.name for p in obj.parent.iterdir()) == ["x.png"]


async def test_missing_blob_and_object_is_permanent(tmp_path):
    blob, batch = await spooled(tmp_path, b"data")
    blob.path.unlink()
    with pytest.raises(PermanentError, match="missing from the spool"):
        await sink(tmp_path).send(batch)


async def test_two_sinks_both_get_the_blob(tmp_path):
    blob, batch = await spooled(tmp_path, b"both")
    a = sink(tmp_path, "a", ("a", "b"), key_template="{name}")
    b = sink(tmp_path, "b", ("a", "b"), key_template="{yyyy}/{id}")
    await a.send(batch)
    assert blob.path.exists()
    await a.send(batch)  # already has it: no second upload needed, blob kept for b
    await b.send(batch)
    assert (tmp_path / "out-a" / "u/x.png").read_bytes() == b"both"
    assert (tmp_path / "out-b" / "2026" / "01900000-0000-7000-8000-000000000001").read_bytes() == b"both"
    assert not blob.path.exists()


async def test_a_sink_that_does_not_take_the_stream_is_not_waited_for(tmp_path):
    # Two attachments sinks split by stream: the blob of a "specimen" record goes once its
    # own sink has it (waiting for the "ldo" sink would keep it in the spool for good).
    blob, batch = await spooled(tmp_path, b"only-a")
    split = {"a": frozenset({"specimen"}), "b": frozenset({"ldo"})}
    a = sink(tmp_path, "a", ("a", "b"), split, streams=["specimen"])
    await a.send(batch)
    assert (tmp_path / "out-a" / f"attachments/acme/2026/11/23/{blob.key}/u/x.png").read_bytes() == b"only-a"
    assert not blob.path.exists()
    assert sorted(p.name for p in blob.path.parent.iterdir() if p.is_file()) == []  # no markers left


async def test_a_sink_without_a_filter_is_waited_for(tmp_path):
    blob, batch = await spooled(tmp_path, b"a-and-c")
    peers = {"a": frozenset({"specimen"}), "b": frozenset({"ldo"}), "c": frozenset()}
    a = sink(tmp_path, "a", ("a", "b", "c"), peers, streams=["specimen"])
    c = sink(tmp_path, "c", ("a", "b", "c"), peers)
    await a.send(batch)
    assert blob.path.exists()  # c takes every stream: it must have the blob too
    await c.send(batch)
    assert not blob.path.exists()


def test_the_gateway_tells_sinks_each_others_streams(tmp_path):
    from sluiceway.runtime.deliveries import build_sinks

    cfg = validate_tree({"data_dir": str(tmp_path), "sinks": [
        {"name": "a", "type": "attachments", "streams": ["specimen"]},
        {"name": "b", "type": "attachments", "streams": ["ldo"]},
        {"name": "c", "type": "attachments"},
        {"name": "db", "type": "sql"},
    ]})
    sinks = {s.name: s for s, _ in build_sinks(cfg, store=None)}
    assert sinks["a"].peers("specimen") == ["a", "c"]
    assert sinks["c"].peers("ldo") == ["b", "c"]
    assert sinks["c"].peers("usage") == ["c"]


def test_batches_without_attachments_are_a_no_op(tmp_path):
    doc = {"id": "i", "tenant": "t", "stream": "s", "received_at": "2026-01-01T00:00:00Z", "attachments": []}
    import asyncio

    asyncio.run(sink(tmp_path).send(Batch("p", 1, 1, docs=[doc], raw=[b"{}"])))


@pytest.mark.parametrize("template,message", [
    ("{tenant}/{yyyy}", "must contain {id}, {blob} or {name}"),
    ("{nope}/{id}", "unknown placeholder {nope}"),
    ("/{id}", "must not start or end"),
])
def test_template_validation(template, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate_tree({"sinks": [{"type": "attachments", "key_template": template}]})


async def test_a_refused_upload_keeps_the_blob_for_a_dead_letter_retry(tmp_path):
    blob, batch = await spooled(tmp_path, b"kept")
    s = sink(tmp_path)
    put_file = s.store.put_file

    async def refuse(*args, **kwargs):
        raise PermanentError("403 Forbidden")

    s.store.put_file = refuse
    with pytest.raises(PermanentError, match="1 of 1 attachments failed"):
        await s.send(batch)  # delivery dead-letters the record; its journal entry may then go
    assert blob.path.read_bytes() == b"kept"  # what `sluice deadletters retry` will send
    s.store.put_file = put_file
    await s.send(batch)  # the retried dead letter
    assert (tmp_path / "out-att" / f"attachments/acme/2026/11/23/{blob.key}/u/x.png").read_bytes() == b"kept"
    assert not blob.path.exists()

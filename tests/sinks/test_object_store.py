from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from sluiceway.errors import PermanentError, TransientError
from sluiceway.record import Record, new_id
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.encoding import decode_jsonl_gzip
from sluiceway.sinks.object_store import (
    PLACEHOLDERS,
    ObjectStoreSink,
    ObjectStoreSinkConfig,
    validate_key_template,
)

H10 = datetime(2024, 3, 1, 10, 15, tzinfo=timezone.utc)
H11 = datetime(2024, 3, 1, 11, 5, tzinfo=timezone.utc)


def rec(stream: str, tenant: str, at: datetime, n: int = 0) -> Record:
    return Record(id=new_id(), tenant=tenant, stream=stream, source="test", received_at=at, payload={"n": n})


def make_sink(tmp_path: Path, **cfg) -> ObjectStoreSink:
    config = ObjectStoreSinkConfig.model_validate({"name": "objects", "type": "object_store", **cfg})
    return ObjectStoreSink("objects", config, SinkContext(data_dir=tmp_path, store=None))  # type: ignore[arg-type]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mixed_batch(first: int = 1, partition: str = "w0") -> Batch:
    records = [
        rec("usage", "acme", H10, 0),
        rec("usage", "acme", H11, 1),
        rec("error", "acme", H10, 2),
        rec("usage", "globex", H10, 3),
        rec("usage", "acme", H10 + timedelta(minutes=30), 4),
    ]
    return Batch(partition, first, first + len(records) - 1, records)


async def test_keys_and_grouping_by_stream_tenant_hour(tmp_path: Path):
    sink = make_sink(tmp_path)
    batch = mixed_batch()
    await sink.send(batch)
    root = tmp_path / "objects"
    got = files(root)
    b = "w0-000000000001-000000000005"
    assert sorted(got) == sorted([
        f"usage/acme/2024/03/01/10/{b}.jsonl.gz",
        f"usage/acme/2024/03/01/11/{b}.jsonl.gz",
        f"error/acme/2024/03/01/10/{b}.jsonl.gz",
        f"usage/globex/2024/03/01/10/{b}.jsonl.gz",
    ])
    acme10 = decode_jsonl_gzip(got[f"usage/acme/2024/03/01/10/{b}.jsonl.gz"])
    assert [r.payload["n"] for r in acme10] == [0, 4]  # journal order kept
    assert acme10 == [batch.records[0], batch.records[4]]
    assert [r.payload["n"] for r in decode_jsonl_gzip(got[f"usage/acme/2024/03/01/11/{b}.jsonl.gz"])] == [1]
    await sink.aclose()


async def test_resend_overwrites_with_identical_content(tmp_path: Path):
    sink = make_sink(tmp_path)
    batch = mixed_batch()
    await sink.send(batch)
    before = files(tmp_path / "objects")
    await sink.send(batch)
    again = make_sink(tmp_path)  # a new process after a crash
    await again.send(Batch(batch.partition, batch.first_offset, batch.last_offset, list(batch.records)))
    assert files(tmp_path / "objects") == before


async def test_a_resent_batch_removes_what_an_interrupted_write_left(tmp_path: Path):
    """A process killed while writing an object leaves its staging file (``<name>#<digits>``)
    beside it. The batch is sent again at the next start (``Batch.resent``): those files go,
    and nothing else does."""
    sink = make_sink(tmp_path)
    batch = mixed_batch()
    await sink.send(batch)
    root = tmp_path / "objects"
    before = files(root)
    obj = root / "usage/acme/2024/03/01/10/w0-000000000001-000000000005.jsonl.gz"
    left = [obj.with_name(obj.name + "#" + digits) for digits in ("1234567890", "42")]
    kept = [obj.with_name(obj.name + "#x1"), obj.with_name(obj.name + ".bak#7"), obj.with_name("other#5")]
    for p in left + kept:
        p.write_bytes(b"partial")
    await sink.send(batch)  # sent again by a running delivery (a retry): nothing is removed
    assert all(p.exists() for p in left + kept)
    again = make_sink(tmp_path)
    await again.send(Batch(batch.partition, batch.first_offset, batch.last_offset, list(batch.records),
                           resent=True))
    assert not any(p.exists() for p in left)
    assert all(p.exists() for p in kept)
    for p in kept:
        p.unlink()
    assert files(root) == before
    await sink.aclose()
    await again.aclose()


async def test_two_batches_never_share_a_key(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.send(mixed_batch(first=1))
    n1 = len(files(tmp_path / "objects"))
    await sink.send(mixed_batch(first=6))
    await sink.send(mixed_batch(first=1, partition="w1"))  # same offsets, other partition
    got = files(tmp_path / "objects")
    assert len(got) == 3 * n1
    assert len({k.rsplit("/", 1)[1] for k in got}) == 3


async def test_partition_first_last_template(tmp_path: Path):
    sink = make_sink(tmp_path, key_template="{partition}/{stream}-{first}-{last}.jsonl.gz")
    await sink.send(mixed_batch(first=7))
    assert sorted(files(tmp_path / "objects")) == [
        "w0/error-000000000007-000000000011.jsonl.gz",
        "w0/usage-000000000007-000000000011.jsonl.gz",
    ]


async def test_template_without_hour_groups_by_rendered_key(tmp_path: Path):
    sink = make_sink(tmp_path, key_template="{yyyy}{mm}{dd}/{batch}.jsonl.gz")
    batch = mixed_batch()
    await sink.send(batch)
    got = files(tmp_path / "objects")
    assert list(got) == ["20240301/w0-000000000001-000000000005.jsonl.gz"]
    assert decode_jsonl_gzip(next(iter(got.values()))) == batch.records


async def test_hours_are_utc(tmp_path: Path):
    ist = timezone(timedelta(hours=5, minutes=30))
    records = [rec("log", "t", datetime(2024, 3, 1, 10, 15, tzinfo=ist)),  # 04:45Z
               rec("log", "t", datetime(2024, 3, 1, 10, 45, tzinfo=ist)),  # 05:15Z
               rec("log", "t", datetime(2024, 3, 1, 23, 59))]  # naive = UTC
    sink = make_sink(tmp_path, key_template="{stream}/{yyyy}-{mm}-{dd}T{hh}/{batch}.jsonl.gz")
    await sink.send(Batch("w0", 1, 3, records))
    assert sorted(files(tmp_path / "objects")) == [
        "log/2024-03-01T04/w0-000000000001-000000000003.jsonl.gz",
        "log/2024-03-01T05/w0-000000000001-000000000003.jsonl.gz",
        "log/2024-03-01T23/w0-000000000001-000000000003.jsonl.gz",
    ]


async def test_many_groups_are_all_written(tmp_path: Path):
    records = [rec("usage", f"tenant-{i:02d}", H10, i) for i in range(40)]
    sink = make_sink(tmp_path)
    await sink.send(Batch("w0", 100, 139, records))
    got = files(tmp_path / "objects")
    assert len(got) == 40
    assert sorted(r.payload["n"] for data in got.values() for r in decode_jsonl_gzip(data)) == list(range(40))


async def test_path_option_and_streams_filter(tmp_path: Path):
    target = tmp_path / "elsewhere"
    sink = make_sink(tmp_path, path=str(target), streams=["error"])
    await sink.send(mixed_batch())
    assert list(files(target)) == ["error/acme/2024/03/01/10/w0-000000000001-000000000005.jsonl.gz"]
    assert not (tmp_path / "objects").exists()
    await sink.send(Batch("w0", 10, 10, [rec("usage", "acme", H10)]))  # nothing left: no object
    assert len(files(target)) == 1


async def test_empty_batch_writes_nothing(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.send(Batch("w0", 1, 0, []))
    assert files(tmp_path / "objects") == {}


async def test_compression_level_changes_bytes_not_content(tmp_path: Path):
    batch = Batch("w0", 1, 200, [rec("usage", "acme", H10, i) for i in range(200)])
    fast, best = make_sink(tmp_path / "a", compression_level=1), make_sink(tmp_path / "b", compression_level=9)
    await fast.send(batch)
    await best.send(batch)
    (a,), (b,) = files(tmp_path / "a" / "objects").values(), files(tmp_path / "b" / "objects").values()
    assert decode_jsonl_gzip(a) == decode_jsonl_gzip(b) == batch.records


async def test_healthcheck_and_close(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.healthcheck()
    await sink.aclose()
    await sink.aclose()
    with pytest.raises(TransientError):
        await sink.send(mixed_batch())


async def test_failures_are_combined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sink = make_sink(tmp_path)
    real_put = sink.store.put

    def failing(errors: dict[str, Exception]):
        async def put(key, data, **kw):
            for part, err in errors.items():
                if part in key:
                    raise err
            await real_put(key, data, **kw)
        return put

    monkeypatch.setattr(sink.store, "put", failing({"globex": TransientError("slow", retry_after=4),
                                                    "error/": TransientError("slow", retry_after=2)}))
    with pytest.raises(TransientError, match="2 of 4 objects failed") as info:
        await sink.send(mixed_batch())
    assert info.value.retry_after == 4
    # transient and permanent: all again (the permanent one alone is settled on a later try)
    monkeypatch.setattr(sink.store, "put", failing({"globex": TransientError("slow"),
                                                    "error/": PermanentError("denied")}))
    with pytest.raises(TransientError, match="2 of 4 objects failed; first: slow"):
        await sink.send(mixed_batch())
    # every object refused for good: permanent (delivery then tries halves; nothing was stored)
    monkeypatch.setattr(sink.store, "put", failing({"/": PermanentError("denied")}))
    with pytest.raises(PermanentError, match="4 of 4 objects failed; first: denied"):
        await sink.send(mixed_batch())
    monkeypatch.setattr(sink.store, "put", failing({"globex": RuntimeError("bug")}))
    with pytest.raises(TransientError, match="bug"):
        await sink.send(mixed_batch())


async def test_only_the_records_of_refused_objects_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Some objects stored, others refused for good: the stored ones stand and only the
    records of the refused ones are dead-lettered (a split would store them twice)."""
    from sluiceway.errors import RejectedRecords

    sink = make_sink(tmp_path)
    real_put = sink.store.put

    async def put(key, data, **kw):
        if "/acme/" in key and "/10/" in key:
            raise PermanentError("403 AccessDenied")
        await real_put(key, data, **kw)

    monkeypatch.setattr(sink.store, "put", put)
    with pytest.raises(RejectedRecords) as info:
        await sink.send(mixed_batch())
    assert sorted(info.value.rejected) == [0, 2, 4]  # usage/acme/10 (0, 4) and error/acme/10 (2)
    assert "403 AccessDenied" in info.value.rejected[0]
    b = "w0-000000000001-000000000005"
    assert sorted(files(tmp_path / "objects")) == [f"usage/acme/2024/03/01/11/{b}.jsonl.gz",
                                                   f"usage/globex/2024/03/01/10/{b}.jsonl.gz"]


async def test_delivery_dead_letters_the_refused_object_records_once(tmp_path: Path, sqlite_store,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """End to end through the delivery helper: no record lands in two objects."""
    import asyncio

    from sluiceway.journal import EmbeddedJournal
    from sluiceway.sinks.delivery import Delivery

    sink = make_sink(tmp_path)
    real_put = sink.store.put

    async def put(key, data, **kw):
        if key.startswith("error/"):
            raise PermanentError("403 AccessDenied")
        await real_put(key, data, **kw)

    monkeypatch.setattr(sink.store, "put", put)
    journal = EmbeddedJournal(tmp_path / "journal", writer_name="w0")
    await journal.open(["objects"])
    records = mixed_batch().records
    await journal.writer().append([r.encode() for r in records])
    d = Delivery(journal.writer(), sink, sink.config, sqlite_store, handle_dead_letters=False)
    d.drain()
    await asyncio.wait_for(d.run(), 10)
    stored = [r.id for body in files(tmp_path / "objects").values() for r in decode_jsonl_gzip(body)]
    dead = [row["record_id"] for row in await sqlite_store.list_dead_letters(sink="objects")]
    assert sorted(stored) == sorted(r.id for r in records if r.stream != "error")  # each once
    assert dead == [records[2].id]
    await journal.aclose()
    await sink.aclose()


# ------------------------------------------------------------------------ validation


def test_default_config_is_valid():
    cfg = ObjectStoreSinkConfig(name="objects")
    assert cfg.type == "object_store" and cfg.path is None and cfg.s3 is None and cfg.compression_level == 6
    assert validate_key_template(cfg.key_template) == {"stream", "tenant", "yyyy", "mm", "dd", "hh", "batch"}


def test_unknown_placeholder_is_named_with_the_valid_ones():
    with pytest.raises(ValidationError) as info:
        ObjectStoreSinkConfig(name="o", key_template="{stream}/{day}/{batch}.gz")
    text = str(info.value)
    assert "{day}" in text
    for p in PLACEHOLDERS:
        assert "{" + p + "}" in text


@pytest.mark.parametrize("template", [
    "{stream}/{tenant}/{yyyy}/{hh}.jsonl.gz",  # no batch identity at all
    "{stream}/{first}.jsonl.gz",
    "{stream}/{first}-{last}.jsonl.gz",  # two partitions can have the same offsets
])
def test_template_must_identify_the_batch(template: str):
    with pytest.raises(ValidationError, match=r"must contain \{batch\}"):
        ObjectStoreSinkConfig(name="o", key_template=template)


@pytest.mark.parametrize("template", [
    "{stream}/{batch",  # malformed
    "{batch:>20}",  # format spec
    "{batch!r}",
    "{}/{batch}",  # positional
    "/{stream}/{batch}",  # leading slash
    "{stream}//{batch}",
    "{stream}/../{batch}",
    "{stream}/{batch}/",
])
def test_bad_templates(template: str):
    with pytest.raises(ValidationError):
        ObjectStoreSinkConfig(name="o", key_template=template)


def test_literal_braces_are_allowed():
    assert validate_key_template("{{x}}/{batch}") == {"batch"}


def test_other_config_errors():
    for bad in ({"compression_level": 0}, {"compression_level": 10}, {"unknown": 1},
                {"path": "/tmp/x", "s3": {"bucket": "logs"}}):
        with pytest.raises(ValidationError):
            ObjectStoreSinkConfig.model_validate({"name": "o", **bad})
    cfg = ObjectStoreSinkConfig.model_validate({"name": "o", "s3": {"bucket": "logs", "prefix": "p"}})
    assert cfg.s3 is not None and cfg.s3.bucket == "logs"


async def test_hostname_placeholder(tmp_path):
    from sluiceway.sinks.object_store.sink import HOSTNAME

    sink = make_sink(tmp_path, key_template="{yyyy}{mm}{dd}{hh}.{hostname}.{batch}.jsonl.gz")
    await sink.send(Batch("w0", 1, 1, [rec("usage", "acme", H10)]))
    keys = [p.name for p in (tmp_path / "objects").rglob("*.jsonl.gz")]
    assert len(keys) == 1 and f".{HOSTNAME}." in keys[0] and "." not in HOSTNAME

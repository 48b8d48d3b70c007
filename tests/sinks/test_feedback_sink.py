"""The feedback sink: real upserts, and records that are not feedback items dead-lettered alone."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from sluiceway.feedback.item import FeedbackItem, encode_items, feedback_id
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.delivery import Delivery
from sluiceway.sinks.feedback import FeedbackSink, FeedbackSinkConfig
from sluiceway.errors import RejectedRecords
import pytest

T0 = datetime(2025, 5, 10, 8, 15, tzinfo=timezone.utc)


def item(ext: str, body: str, rating: int | None = 4, updated: datetime | None = None) -> FeedbackItem:
    return FeedbackItem("playstore", "com.acme", ext, body, T0, updated, author="jane", rating=rating, language="en")


def batch(tenant: str, items: list[FeedbackItem], extra: list[bytes] = ()) -> Batch:
    raw = encode_items(items, tenant=tenant, source="test", received_at="2026-11-23T10:00:00Z") + list(extra)
    return Batch("p", 1, len(raw), raw=raw)


async def rows(store, tenant):
    return await store.query_feedback(tenant, limit=100)


async def test_upsert_inserts_updates_and_skips_unchanged(any_store):
    sink = FeedbackSink("fb", FeedbackSinkConfig(name="fb"), SinkContext(data_dir=None, store=any_store))
    await sink.send(batch("acme", [item("r1", "great"), item("r2", "meh", 2)]))
    first = {r["external_id"]: r for r in await rows(any_store, "acme")}
    assert set(first) == {"r1", "r2"} and first["r1"]["id"] == feedback_id("acme", "playstore", "com.acme", "r1")
    # replay: nothing changes (fetched_at stays the first one's)
    await sink.send(batch("acme", [item("r1", "great"), item("r2", "meh", 2)]))
    again = {r["external_id"]: r for r in await rows(any_store, "acme")}
    assert again == first
    # an edit updates the row in place
    edited = item("r2", "actually good", 5, updated=T0.replace(day=11))
    await sink.send(Batch("p", 9, 9, raw=encode_items([edited], tenant="acme", source="t",
                                                         received_at="2026-11-24T10:00:00Z")))
    after = {r["external_id"]: r for r in await rows(any_store, "acme")}
    assert after["r2"]["body"] == "actually good" and after["r2"]["rating"] == 5
    assert after["r2"]["id"] == first["r2"]["id"] and after["r1"] == first["r1"]
    # the same external id under another tenant is another row
    await sink.send(batch("other", [item("r1", "great")]))
    assert len(await rows(any_store, "other")) == 1 and len(await rows(any_store, "acme")) == 2


async def test_records_that_are_not_items_are_refused_alone(any_store):
    sink = FeedbackSink("fb", FeedbackSinkConfig(name="fb"), SinkContext(data_dir=None, store=any_store))
    junk = orjson.dumps({"id": "01900000-0000-7000-8000-000000000009", "tenant": "acme", "stream": "feedback",
                         "source": "http", "received_at": "2026-11-23T10:00:00Z", "payload": {"text": "hi"}})
    with pytest.raises(RejectedRecords) as e:
        await sink.send(batch("acme", [item("r1", "ok")], [junk]))
    assert list(e.value.rejected) == [1] and "missing id" in e.value.rejected[1]
    assert [r["external_id"] for r in await rows(any_store, "acme")] == ["r1"]


async def test_delivery_dead_letters_only_the_refused_records(tmp_path, sqlite_store):
    from sluiceway.journal import EmbeddedJournal

    j = EmbeddedJournal(tmp_path / "j")
    await j.open(["fb"])
    w = j.writer()
    junk = orjson.dumps({"id": "01900000-0000-7000-8000-000000000009", "tenant": "acme", "stream": "feedback",
                         "source": "http", "received_at": "2026-11-23T10:00:00Z", "payload": {"text": "hi"}})
    good = encode_items([item("r1", "ok")], tenant="acme", source="t", received_at="2026-11-23T10:00:00Z")
    await w.append(good + [junk])
    cfg = FeedbackSinkConfig(name="fb", batch={"max_age": 0.01})
    sink = FeedbackSink("fb", cfg, SinkContext(data_dir=tmp_path, store=sqlite_store))
    d = Delivery(w, sink, cfg, sqlite_store)
    d.drain()
    await d.run()
    await j.aclose()
    dead = await sqlite_store.list_dead_letters(sink="fb")
    assert len(dead) == 1 and dead[0]["offset"] == 2 and "not a feedback item" in dead[0]["error"]
    assert len(await rows(sqlite_store, "acme")) == 1


async def test_upsert_in_several_chunks_counts_and_last_wins(any_store, monkeypatch):
    """PostgreSQL stages and upserts a call chunk by chunk (overlapping the next chunk's rows
    with the statement); the result is the same as one statement, on SQLite as well."""
    from sluiceway.store import feedback as fb

    monkeypatch.setattr(fb, "PIPELINE_ROWS", 3)

    def payload(ext: str, body: str) -> tuple[str, dict]:
        return "acme", item(ext, body).payload("acme")

    assert await any_store.upsert_feedback([payload(f"c{i}", "v1") for i in range(8)]) == 8
    # 4 edits, 4 unchanged, 2 new, and one identity twice in the call (the last one wins)
    call = [payload(f"c{i}", "v2" if i % 2 else "v1") for i in range(8)] + [payload("c8", "new"), payload("c9", "x")]
    call += [payload("c9", "y"), payload("c0", "late")]  # c0 again, in a later chunk on PostgreSQL
    assert await any_store.upsert_feedback(call) == 7
    got = {r["external_id"]: r["body"] for r in await rows(any_store, "acme")}
    assert got == {**{f"c{i}": "v2" if i % 2 else "v1" for i in range(8)}, "c0": "late", "c8": "new", "c9": "y"}
    assert await any_store.upsert_feedback(call[-1:]) == 0


async def test_bad_payload_in_a_later_chunk_rolls_the_whole_call_back(any_store, monkeypatch):
    from sluiceway.store import feedback as fb

    monkeypatch.setattr(fb, "PIPELINE_ROWS", 2)
    good = [("acme", item(f"k{i}", "v").payload("acme")) for i in range(5)]
    bad = ("acme", {**item("k9", "v").payload("acme"), "created_at": "not a time"})
    with pytest.raises(ValueError):
        await any_store.upsert_feedback(good + [bad])
    assert await rows(any_store, "acme") == []  # one transaction: nothing of the call was kept
    assert await any_store.upsert_feedback(good) == 5  # and the store is still usable


@pytest.mark.parametrize("parts", [("acme", "playstore", "com.acme", "r1"), ("t", "webhook", "", "é☃ 42"),
                                   ("a", "x", "", "")])
def test_feedback_id_is_the_uuid5_of_the_identity(parts):
    import uuid

    from sluiceway.feedback.item import _NS

    assert feedback_id(*parts) == str(uuid.uuid5(_NS, "\x1f".join(parts)))


def test_item_times_are_written_in_utc_with_z():
    from datetime import timedelta

    from sluiceway.feedback.item import iso

    assert iso(datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)) == "2025-01-02T03:04:05.000006Z"
    assert iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == "2025-01-02T01:04:05Z"
    assert iso(None) is None
    with pytest.raises(ValueError, match="tz-aware"):
        iso(datetime(2025, 1, 2))


async def test_nul_characters_in_text_and_metadata(any_store):
    """PostgreSQL's text and jsonb cannot hold NUL: there it is stored as U+FFFD (as in records);
    SQLite keeps the text as fetched. The item is stored either way, not dead-lettered."""
    p = FeedbackItem("playstore", "com.acme", "n1", "bad\x00byte", T0, None, author="ja\x00ne",
                     metadata={"k": "v\x00w"}).payload("acme")
    assert await any_store.upsert_feedback([("acme", p)]) == 1
    [got] = await rows(any_store, "acme")
    nul = "\ufffd" if any_store.dialect == "postgresql" else "\x00"
    assert (got["body"], got["author"], got["metadata"]) == (f"bad{nul}byte", f"ja{nul}ne", {"k": f"v{nul}w"})

from datetime import datetime

from sluiceway.record import Record, new_id, utcnow
from sluiceway.store import Store


def items(n: int, start: int = 1, partition: str = "w0") -> list[tuple[str, int, str | None, bytes]]:
    out = []
    for off in range(start, start + n):
        r = Record(id=new_id(), tenant="acme", stream="usage", source="s", received_at=utcnow(), payload={"off": off})
        out.append((partition, off, r.id, r.encode()))
    return out


async def test_add_and_list(any_store: Store) -> None:
    batch = items(3)
    assert await any_store.add_dead_letters("warehouse", batch, "constraint violated") == 3
    rows = await any_store.list_dead_letters()
    assert [r["offset"] for r in rows] == [1, 2, 3]
    r0 = rows[0]
    assert r0["sink"] == "warehouse" and r0["partition"] == "w0" and r0["record_id"] == batch[0][2]
    assert r0["status"] == "dead" and r0["attempts"] == 0 and r0["error"] == "constraint violated"
    assert Record.decode(r0["data"]).payload == {"off": 1}
    assert r0["created_at"].endswith("Z") and datetime.fromisoformat(r0["created_at"].replace("Z", "+00:00"))
    assert await any_store.count_dead_letters() == 3
    assert await any_store.add_dead_letters("warehouse", [], "x") == 0


async def test_skip_existing_files_each_journal_entry_once(any_store: Store) -> None:
    first = items(3)
    await any_store.add_dead_letters("warehouse", first[:2], "e")
    await any_store.add_dead_letters("other", first[2:], "e")
    raw = ("w0", 9, None, b"\xff")
    await any_store.add_dead_letters("warehouse", [raw], "undecodable")
    moved = ("w0", 1, "another-record-id", b"{}")  # same offset, another record: a new journal
    again = first + [raw, moved, ("w1", 1, first[0][2], first[0][3])]
    assert await any_store.add_dead_letters("warehouse", again, "e", skip_existing=True) == 3
    rows = await any_store.list_dead_letters(sink="warehouse")
    assert sorted((r["partition"], r["offset"], r["record_id"] or "") for r in rows) == sorted(
        [("w0", 1, first[0][2]), ("w0", 2, first[1][2]), ("w0", 3, first[2][2]), ("w0", 9, ""),
         ("w0", 1, "another-record-id"), ("w1", 1, first[0][2])])


async def test_raw_bytes_are_kept_readable(any_store: Store) -> None:
    await any_store.add_dead_letters("s", [("w1", 7, None, b"\xff\xfe not json \x00 end")], "undecodable\x00")
    [row] = await any_store.list_dead_letters()
    assert row["record_id"] is None
    assert row["data"] == "\ufffd\ufffd not json \ufffd end"
    assert row["error"] == "undecodable\ufffd"


async def test_filters_and_paging(any_store: Store) -> None:
    await any_store.add_dead_letters("a", items(5), "e")
    await any_store.add_dead_letters("b", items(2), "e")
    assert await any_store.count_dead_letters("a") == 5
    assert await any_store.count_dead_letters("b") == 2
    first = await any_store.list_dead_letters(sink="a", limit=3)
    rest = await any_store.list_dead_letters(sink="a", limit=3, after_id=first[-1]["id"])
    assert [r["offset"] for r in first + rest] == [1, 2, 3, 4, 5]
    assert await any_store.list_dead_letters(sink="a", status="retry") == []


async def test_retry_cycle(any_store: Store) -> None:
    await any_store.add_dead_letters("a", items(4), "first error")
    await any_store.add_dead_letters("b", items(1), "e")
    ids = [r["id"] for r in await any_store.list_dead_letters(sink="a")]

    assert await any_store.take_retry("a", 10) == []
    assert await any_store.request_retry(ids=[]) == 0  # an empty id list retries nothing
    assert await any_store.request_retry(sink="a", ids=ids[:2]) == 2
    assert await any_store.request_retry(sink="a") == 2  # the other two
    assert await any_store.request_retry(sink="a") == 0  # nothing dead left
    assert await any_store.count_dead_letters("a", status="retry") == 4
    assert await any_store.count_dead_letters("b", status="dead") == 1

    taken = await any_store.take_retry("a", 3)
    assert [t["id"] for t in taken] == ids[:3]  # oldest first, limited

    assert await any_store.resolve_dead_letters([ids[0], ids[1]]) == 2
    assert await any_store.fail_retry([ids[2]], "second error") == 1
    rows = {r["id"]: r for r in await any_store.list_dead_letters(sink="a")}
    assert set(rows) == {ids[2], ids[3]}
    assert rows[ids[2]]["status"] == "dead" and rows[ids[2]]["attempts"] == 1
    assert rows[ids[2]]["error"] == "second error"
    assert rows[ids[3]]["status"] == "retry" and rows[ids[3]]["attempts"] == 0
    assert await any_store.resolve_dead_letters([]) == 0
    assert await any_store.fail_retry([], "x") == 0


async def test_the_set_in_flight_is_taken_again_first_and_alone(any_store: Store) -> None:
    await any_store.add_dead_letters("a", items(5), "e")
    await any_store.add_dead_letters("b", items(2), "e")
    await any_store.request_retry()
    ids = [r["id"] for r in await any_store.list_dead_letters(sink="a")]
    await any_store.mark_sending(ids)
    await any_store.mark_sending(ids[1:3], back=ids[3:])  # a split: part 1:3 in flight, 3: waits
    await any_store.mark_sending([], back=[ids[0]])  # "back" only moves rows that were sending
    status = {r["id"]: r["status"] for r in await any_store.list_dead_letters()}
    assert [status[i] for i in ids] == ["retry", "sending", "sending", "retry", "retry"]
    assert [r["id"] for r in await any_store.take_retry("a", 1)] == ids[1:3]  # all of it, no limit
    assert len(await any_store.take_retry("b", 10)) == 2  # another sink's rows are its own
    await any_store.resolve_dead_letters(ids[1:2])
    await any_store.fail_retry(ids[2:3], "again")
    assert [r["id"] for r in await any_store.take_retry("a", 10)] == [ids[0], ids[3], ids[4]]
    assert await any_store.request_retry(sink="a") == 1  # the one dead again; no "sending" left


async def test_retry_everything_and_many_ids(any_store: Store) -> None:
    await any_store.add_dead_letters("a", items(1500), "e")
    await any_store.add_dead_letters("b", items(3), "e")
    ids = [r["id"] for r in await any_store.list_dead_letters(sink="a", limit=5000)]
    assert await any_store.request_retry(ids=ids) == 1500  # chunked IN lists
    assert await any_store.request_retry() == 3  # every sink
    assert await any_store.resolve_dead_letters(ids) == 1500
    assert await any_store.count_dead_letters() == 3

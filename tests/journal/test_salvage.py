"""``sluice journal salvage``: records of quarantined files go back into the journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from sluiceway.cli import app
from sluiceway.journal import EmbeddedJournal
from sluiceway.journal.salvage import find_records
from tests.journal.common import read_all
from tests.journal.test_cli import record
from tests.journal.test_repair import damage, segs

runner = CliRunner()


async def cut_tail(data_dir: Path) -> Path:
    """A journal whose last segment had a bad frame with good ones after it: the writer cut
    them and kept a copy in the quarantine. The copy's path."""
    j = EmbeddedJournal(data_dir / "journal", segment_bytes=1 << 20)
    await j.open([])
    for i in range(8):
        await j.writer().append([record(i)])
    await j.writer().append([b"not a record"])
    await j.aclose()
    (last,) = segs(data_dir)
    damage(last, 4)  # the frame of offset 5 (record 4)
    j = EmbeddedJournal(data_dir / "journal", segment_bytes=1 << 20)
    await j.open([])
    await j.aclose()
    (kept,) = (data_dir / "journal" / "quarantine" / "w0").iterdir()
    return kept


async def test_the_good_records_of_a_cut_tail_go_back_into_a_partition_of_their_own(tmp_path):
    kept = await cut_tail(tmp_path)
    found = find_records(kept)
    assert found.records == [record(i) for i in (5, 6, 7)] and found.skipped == 1

    args = ["journal", "salvage", str(kept), "--data-dir", str(tmp_path)]
    dry = await asyncio.to_thread(runner.invoke, app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "3 record(s) to put back, 1 good frame(s) that are not records" in dry.stdout
    r = await asyncio.to_thread(runner.invoke, app, args)  # the command runs its own event loop
    assert r.exit_code == 0, r.output
    assert "3 record(s) put back into the journal (partition salvage, offsets 1-3)" in r.stdout
    assert not kept.exists() and kept.with_name(kept.name + ".salvaged").exists()

    reader = EmbeddedJournal(tmp_path / "journal", writer=False)
    await reader.open([])
    try:
        parts = {p.name: p for p in await reader.refresh()}
        assert [e.data for e in await read_all(parts["salvage"])] == [record(i) for i in (5, 6, 7)]
    finally:
        await reader.aclose()
    again = await asyncio.to_thread(runner.invoke, app, args)  # renamed: not taken twice
    assert again.exit_code == 2


def test_a_file_the_journal_did_not_put_there_is_refused(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_bytes(b"hello")
    r = runner.invoke(app, ["journal", "salvage", str(other), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "not a quarantined journal file" in r.stderr


async def test_a_running_gateway_delivers_what_was_salvaged(tmp_path):
    from tests.helpers import eventually, make_config, running_gateway
    from tests.http.test_api import sinks

    data = tmp_path / "data"
    kept = await cut_tail(data)
    cfg = make_config(data, sinks=sinks())
    async with running_gateway(cfg) as (gateway, client):
        _, token = await gateway.store.create_token("acme", ["ingest", "read"])
        client.headers["Authorization"] = f"Bearer {token}"
        r = await asyncio.to_thread(runner.invoke, app, ["journal", "salvage", str(kept), "--data-dir", str(data)])
        assert r.exit_code == 0, r.output

        async def salvaged():  # the delivery watcher finds the new partition within seconds
            events = (await client.get("/v1/streams/usage/events")).json()["events"]
            return {e["id"] for e in events} >= {"r5", "r6", "r7"} or None

        assert await eventually(salvaged, timeout=30)

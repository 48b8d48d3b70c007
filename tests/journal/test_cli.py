"""``sluice journal status`` on both engines."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from sluiceway.cli import app
from sluiceway.config import load_config
from sluiceway.journal import Cursor, build_journal
from sluiceway.runtime.instance import instance_id

runner = CliRunner()


async def fill(config_path: Path | None, data_dir: Path, cursors: dict[str, Cursor], count: int = 5) -> None:
    cfg = load_config(config_path, overrides={"data_dir": str(data_dir)})
    journal = build_journal(cfg, writer=True, writer_name=None)
    await journal.open([s.name for s in cfg.sinks])
    try:
        part = journal.writer()
        await part.append([record(i) for i in range(count)])
        for sink, cur in cursors.items():
            await part.save_cursor(sink, cur)
    finally:
        await journal.aclose()


RECEIVED = [f"2026-12-07T22:{i:02d}:00Z" for i in range(10)]


def record(i: int) -> bytes:
    """A journal entry as the gateway writes it (what ``decode_head`` reads)."""
    return orjson.dumps({"id": f"r{i}", "tenant": "acme", "stream": "usage", "received_at": RECEIVED[i],
                         "payload": {"i": i}})


def status(*args: str):
    return runner.invoke(app, ["journal", "status", *args])


def test_without_a_journal_it_says_so_and_creates_nothing(tmp_path):
    r = status("--data-dir", str(tmp_path / "data"))
    assert r.exit_code == 0 and "no journal in" in r.stdout
    assert not (tmp_path / "data" / "journal").exists()


def test_offsets_cursors_and_lag_per_partition_and_sink(tmp_path):
    asyncio.run(fill(None, tmp_path, {"objects": Cursor(5), "sql": Cursor(2, (3, 4))}))
    r = status("--data-dir", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["partition"] == "w0" and (row["first_offset"], row["last_offset"]) == (1, 5) and row["bytes"] > 0
    assert row["sinks"] == {"objects": {"acked": 5, "pending": None, "lag": 0, "oldest_waiting": None},
                            "sql": {"acked": 2, "pending": [3, 4], "lag": 3, "oldest_waiting": RECEIVED[2]}}
    table = status("--data-dir", str(tmp_path))
    assert table.exit_code == 0, table.output
    assert "3-4" in table.stdout and "sink sql: 3 record(s) not yet delivered" in table.stdout
    assert "1 partition(s)" in table.stdout
    again = status("--data-dir", str(tmp_path), "--json")  # read-only: nothing moved or reclaimed
    assert json.loads(again.stdout) == row
    # nothing delivered from this data dir yet: it has no instance id, and status does not make one
    assert row["instance"] is None and not (tmp_path / "instance-id").exists()
    instance = instance_id(tmp_path)
    assert json.loads(status("--data-dir", str(tmp_path), "--json").stdout)["instance"] == instance
    assert f"1 partition(s) of instance {instance}" in status("--data-dir", str(tmp_path)).stdout
    (tmp_path / "instance-id").write_text("BAD ID\n")  # damaged: the journal is shown, the file named
    damaged = status("--data-dir", str(tmp_path), "--json")
    assert damaged.exit_code == 1 and "instance-id holds 'BAD ID'" in damaged.stderr
    assert json.loads(damaged.stdout) == {**row, "instance": None}


def test_a_damaged_partition_is_named_and_the_others_listed(tmp_path):
    asyncio.run(fill(None, tmp_path, {"objects": Cursor(1), "sql": Cursor(1)}))
    bad = tmp_path / "journal" / "partitions" / "w1"
    bad.mkdir()
    payload = b'{"x":1}'
    # a good crc but the wrong offset (7 where the segment's name says 1): damage, never a torn write
    frame = struct.pack("<IIQ", len(payload), zlib.crc32(struct.pack("<Q", 7) + payload), 7) + payload
    (bad / f"{1:020d}.seg").write_bytes(frame)
    r = status("--data-dir", str(tmp_path), "--json")
    assert r.exit_code == 1
    assert [json.loads(line)["partition"] for line in r.stdout.splitlines()] == ["w0"]
    assert "wrong offset" in r.stderr and "w1" in r.stderr
    assert r.stderr.count("wrong offset") == 1  # named once, not also by the log of opening


@pytest.mark.integration
def test_jetstream_with_another_gateways_streams(tmp_path, nats_url):
    config = tmp_path / "sluice.yaml"
    config.write_text(f"journal:\n  engine: jetstream\n  jetstream:\n    url: {nats_url}\n")
    here, lost = tmp_path / "here", tmp_path / "lost"  # two gateways' data dirs: two instance ids
    asyncio.run(fill(config, here, {"objects": Cursor(4), "sql": Cursor(1, (2, 3))}, count=4))
    asyncio.run(fill(config, lost, {}, count=2))
    mine, theirs = (instance_id(d) for d in (here, lost))
    r = status("-c", str(config), "--data-dir", str(here), "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    (row,) = [x for x in rows if x["instance"] == mine]
    assert row["partition"] == "w0" and row["last_offset"] == 4
    assert row["first_offset"] in (1, 2)  # 1 is purged once every sink acked it
    assert row["sinks"]["sql"] == {"acked": 1, "pending": [2, 3], "lag": 3, "oldest_waiting": RECEIVED[1]}
    assert row["sinks"]["objects"]["lag"] == 0
    (other,) = [x for x in rows if x["instance"] == theirs]
    assert other == {"instance": theirs, "partition": "w0", "stream": f"SLUICE_{theirs}_w0", "first_offset": 1,
                     "last_offset": 2, "bytes": other["bytes"], "sinks": None}
    table = status("-c", str(config), "--data-dir", str(here))
    assert table.exit_code == 0 and f"SLUICE_{theirs}_w0" in table.stdout and "Other gateways'" in table.stdout


def test_jetstream_without_an_instance_id_says_so_and_creates_nothing(tmp_path):
    config = tmp_path / "sluice.yaml"  # the server is not even asked: the streams are named by the id
    config.write_text("journal:\n  engine: jetstream\n  jetstream:\n    url: nats://127.0.0.1:1\n    timeout: 1\n")
    r = status("-c", str(config), "--data-dir", str(tmp_path / "data"))
    assert r.exit_code == 0 and "no journal for" in r.stdout and "no instance-id" in r.stdout
    assert not (tmp_path / "data").exists()


def test_an_unreachable_jetstream_server_is_exit_1(tmp_path):
    config = tmp_path / "sluice.yaml"
    config.write_text("journal:\n  engine: jetstream\n  jetstream:\n    url: nats://127.0.0.1:1\n    timeout: 1\n")
    instance_id(tmp_path)  # a data dir a gateway has run on
    r = status("-c", str(config), "--data-dir", str(tmp_path))
    assert r.exit_code == 1 and "cannot open the journal" in r.stderr

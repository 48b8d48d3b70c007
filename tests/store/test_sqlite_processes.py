"""Several processes share one SQLite file (WAL + busy_timeout): nobody sees "locked"."""

import subprocess
import sys
from pathlib import Path

from sluiceway.store import open_store

WRITER = """
import asyncio, sys
from sluiceway.record import Record, new_id, utcnow
from sluiceway.store import open_store

async def main(url, tenant):
    store = await open_store(url)
    try:
        for b in range(20):
            recs = [Record(id=new_id(), tenant=tenant, stream="usage", source="p",
                           received_at=utcnow(), payload={"b": b, "i": i}) for i in range(50)]
            assert await store.insert_records(recs) == 50
            await store.add_dead_letters(tenant, [("w0", b, None, b"x")], "e")
            await store.create_token(tenant, ["ingest"])
    finally:
        await store.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_processes_share_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{i}"], stderr=subprocess.PIPE)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = await open_store(url)
    try:
        for i in range(4):
            assert len(await store.query_records(f"p{i}", "usage", limit=5000)) == 1000
            assert await store.count_dead_letters(f"p{i}") == 20
        assert len(await store.list_tokens()) == 80
    finally:
        await store.aclose()

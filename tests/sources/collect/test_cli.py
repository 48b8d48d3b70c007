"""sluice files list / retry."""

import asyncio

import orjson
from typer.testing import CliRunner

from sluiceway.cli import app
from sluiceway.store import open_store
from sluiceway.store.files import Listed

runner = CliRunner()


def seed(data_dir) -> None:
    async def run():
        st = await open_store(f"sqlite:///{data_dir / 'sluice.db'}")
        try:
            await st.sync_files("logs", "/x", [Listed(k, "v1", 1, None) for k in ("a.json", "b.json", "c.json")])
            rows = sorted(await st.claim_files("logs", "/x", lease=60, max_attempts=1, limit=2))
            await st.finish_file(rows[0], status="parked", error="corrupt gzip data")
            await st.finish_file(rows[1], status="completed", record_count=3)
        finally:
            await st.aclose()

    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run())


def test_list_and_retry(tmp_path):
    seed(tmp_path)
    d = ["--data-dir", str(tmp_path)]
    r = runner.invoke(app, ["files", "list", "--json", *d])
    assert r.exit_code == 0, r.output
    rows = [orjson.loads(line) for line in r.output.splitlines()]
    assert {x["key"]: x["status"] for x in rows} == {"a.json": "parked", "b.json": "completed", "c.json": "pending"}
    r = runner.invoke(app, ["files", "list", "--status", "parked", *d])
    assert r.exit_code == 0 and "a.json" in r.output and "corrupt" in r.output and "b.json" not in r.output
    assert runner.invoke(app, ["files", "list", "--status", "weird", *d]).exit_code == 2
    r = runner.invoke(app, ["files", "retry", "--all-failed", *d])
    assert r.exit_code == 0 and "queued 1 file" in r.output
    r = runner.invoke(app, ["files", "retry", "b.json", *d])
    assert r.exit_code == 0 and "queued 1 file" in r.output
    assert runner.invoke(app, ["files", "retry", "nope.json", *d]).exit_code == 1
    assert runner.invoke(app, ["files", "retry", *d]).exit_code == 2
    rows = [orjson.loads(x) for x in runner.invoke(app, ["files", "list", "--json", *d]).output.splitlines()]
    assert all(x["status"] == "pending" and x["attempts"] == 0 for x in rows)

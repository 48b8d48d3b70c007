"""The directory source end to end, in process: files → journal → logs sink → logs table."""

from __future__ import annotations

import gzip
import os

import orjson

from tests.helpers import eventually, make_config, running_gateway

T0 = 1743532098671


def records(tag: str, n: int) -> list[dict]:
    return [{"level": 30, "time": T0 + i, "hostname": "h", "context": "Api", "message": f"{tag}-{i}",
             "req": {"headers": {"cookie": "sid=1"}}} for i in range(n)]


def write(path, data: bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def config(tmp_path, logs_dir):
    return make_config(
        tmp_path / "data",
        sources=[{"name": "applogs", "type": "directory", "path": str(logs_dir), "scan_interval": "100ms",
                  "max_attempts": 2, "retry_initial": "50ms", "retry_max": "100ms", "batch_records": 4,
                  "max_bad_share": 0.2}],
        sinks=[{"name": "logs", "type": "logs", "batch": {"max_age": "50ms"}}],
    )


async def messages(store) -> list[str]:
    return [r["message"] for r in await store.query_logs("default", limit=1000)]


async def files(store) -> dict[str, dict]:
    return {r["key"]: r for r in await store.list_files(source="applogs")}


async def test_directory_source_end_to_end(tmp_path):
    d = tmp_path / "logs"
    deep = {"level": 30, "message": "deep", "nested": [[[[[[[[[[{"a": 1}]]]]]]]]]]}
    for _ in range(20):  # 232 levels: orjson writes it, but it nests past MAX_DEPTH: a bad line
        deep = {"level": 30, "nested": [[[[[[[[[[deep]]]]]]]]]]}
    write(d / "2025/04/a.json.gz", gzip.compress(orjson.dumps([*records("a", 9), deep])))
    nd = [orjson.dumps(r) for r in records("b", 10)]
    nd.insert(4, b"{this is not json")
    write(d / "2025/04/deep/b.ndjson", b"\n".join(nd) + b"\n")
    write(d / "c.json.gz", b"\x1f\x8b\x08\x00 corrupt corrupt corrupt")
    write(d / ".hidden.json", orjson.dumps(records("hidden", 1)))
    write(d / "too-bad.ndjson", b"nope\n" + orjson.dumps(records("tb", 1)[0]) + b"\n")
    cfg = config(tmp_path, d)

    async with running_gateway(cfg) as (gw, _):
        async def settled():
            f = await files(gw.store)
            done = {k: r["status"] for k, r in f.items()}
            return done if done.get("c.json.gz") == "parked" and done.get("too-bad.ndjson") == "parked" \
                and len(await messages(gw.store)) == 20 else None

        await eventually(settled)
        f = await files(gw.store)
        assert set(f) == {"2025/04/a.json.gz", "2025/04/deep/b.ndjson", "c.json.gz", "too-bad.ndjson"}
        a, b, c = f["2025/04/a.json.gz"], f["2025/04/deep/b.ndjson"], f["c.json.gz"]
        assert (a["status"], a["record_count"], a["bad_line_count"]) == ("completed", 9, 1)
        assert "levels deep" in a["bad_lines"][0]["error"]
        assert (b["status"], b["record_count"], b["bad_line_count"]) == ("completed", 10, 1)
        assert b["bad_lines"][0]["line"] == 5
        assert c["attempts"] == 2 and "gzip" in c["last_error"]
        assert "1 of 2 lines are bad" in f["too-bad.ndjson"]["last_error"]
        got = await messages(gw.store)
        # the too-bad file's good line was journaled before the share was known; it is kept
        assert sorted(got) == sorted([f"a-{i}" for i in range(9)] + [f"b-{i}" for i in range(10)] + ["tb-0"])
        rows = await gw.store.query_logs("default", limit=1000)
        assert all(r["headers"]["cookie"] == "[REDACTED]" for r in rows)

        # a file replaced with new content is processed again; its new lines get new ids
        write(d / "2025/04/a.json.gz", gzip.compress(orjson.dumps(records("a2", 3))), mtime=1_800_000_000)

        async def replaced():
            return len(await messages(gw.store)) == 23

        await eventually(replaced)
        assert (await files(gw.store))["2025/04/a.json.gz"]["record_count"] == 3

    # a restart re-reads nothing and duplicates nothing; a retried file is reprocessed harmlessly
    async with running_gateway(cfg) as (gw, _):
        assert await gw.store.retry_files(key="2025/04/deep/b.ndjson") == 1
        await eventually(lambda: _status(gw.store, "2025/04/deep/b.ndjson", "completed"))
        await eventually(lambda: _scanned(gw))
        assert sorted(await messages(gw.store)) == sorted(got + [f"a2-{i}" for i in range(3)])


async def _status(store, key, want):
    return (await files(store))[key]["status"] == want


async def _scanned(gw):
    src = gw.sources[0]
    return src.collector is not None and src.collector.scans >= 2

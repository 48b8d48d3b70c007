import asyncio
import json
import subprocess
import sys

from typer.testing import CliRunner

from sluiceway.cli import app

runner = CliRunner()


def test_tokens_create_prints_token_last(tmp_path):
    r = runner.invoke(app, ["tokens", "create", "--data-dir", str(tmp_path), "--tenant", "acme",
                            "--scopes", "ingest,read"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("slw_") and len(token) > 30
    listed = runner.invoke(app, ["tokens", "list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0 and "acme" in listed.stdout and token not in listed.stdout
    token_id = listed.stdout.split("│")[1].strip() if "│" in listed.stdout else None
    assert token_id


def test_tokens_create_rejects_bad_scope_and_tenant(tmp_path):
    r = runner.invoke(app, ["tokens", "create", "--data-dir", str(tmp_path), "--tenant", "acme", "--scopes", "root"])
    assert r.exit_code == 2 and "valid scopes" in r.output
    r = runner.invoke(app, ["tokens", "create", "--data-dir", str(tmp_path), "--tenant", "Acme Inc"])
    assert r.exit_code == 2


def test_tokens_revoke(tmp_path):
    import asyncio

    from sluiceway.store import Store

    async def make():
        s = Store.from_url(f"sqlite:///{tmp_path / 'sluice.db'}")
        await s.open()
        info, _ = await s.create_token("acme", ["ingest"])
        await s.aclose()
        return info.id

    tid = asyncio.run(make())
    r = runner.invoke(app, ["tokens", "revoke", tid, "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["tokens", "revoke", tid, "--data-dir", str(tmp_path)])
    assert r.exit_code == 1


def test_validate_ok_and_bad(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("server:\n  port: 9000\n")
    r = runner.invoke(app, ["validate", str(good)])
    assert r.exit_code == 0 and "ok" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks:\n  - type: sql\n    batch: {max_recordz: 1}\n")
    r = runner.invoke(app, ["validate", str(bad)])
    assert r.exit_code == 2 and "sinks[0].batch.max_recordz" in r.output and "max_records" in r.output
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")]).exit_code == 2


def test_config_show_masks_secrets(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sinks:\n  - type: object_store\n    s3: {bucket: bkt, access_key_id: AK, secret_access_key: SUPERSECRET}\n")
    r = runner.invoke(app, ["config", "show", "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "SUPERSECRET" not in r.output and "bucket: bkt" in r.output


def test_deadletters_and_db_commands(tmp_path):
    r = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "revision" in r.output
    r = runner.invoke(app, ["deadletters", "list", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "0 dead letter(s)" in r.output
    r = runner.invoke(app, ["deadletters", "retry", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "0 dead letter(s) queued" in r.output


def test_deadletters_list_by_status(tmp_path):
    from sluiceway.cli import DL_STATUSES
    from sluiceway.record import Record, new_id, utcnow
    from sluiceway.store import Store
    from sluiceway.store.deadletters import STATUSES

    assert DL_STATUSES == STATUSES

    async def fill():
        store = Store.from_url(f"sqlite:///{tmp_path / 'sluice.db'}")
        await store.open()
        try:
            recs = [Record(id=new_id(), tenant="t", stream="s", source="x", received_at=utcnow(), payload={})
                    for _ in range(3)]
            await store.add_dead_letters("sql", [("w0", n, r.id, r.encode()) for n, r in enumerate(recs)], "e")
            ids = [r["id"] for r in await store.list_dead_letters()]
            await store.request_retry(ids=ids[1:])
            await store.mark_sending(ids[2:])
        finally:
            await store.aclose()

    asyncio.run(fill())
    for status, n in (("dead", 1), ("retry", 1), ("sending", 1)):
        r = runner.invoke(app, ["deadletters", "list", "--status", status, "--json", "--data-dir", str(tmp_path)])
        assert r.exit_code == 0, r.output
        assert [json.loads(line)["status"] for line in r.output.splitlines()] == [status] * n
    r = runner.invoke(app, ["deadletters", "list", "--status", "lost", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "dead, retry, sending" in r.output


def test_deadletters_retry_names_queued_sinks_the_configuration_lacks(tmp_path):
    from sluiceway.store import Store

    async def fill():
        store = Store.from_url(f"sqlite:///{tmp_path / 'sluice.db'}")
        await store.open()
        try:
            for offset, sink in enumerate(("sql", "old-s3", "old-s3"), 1):
                await store.add_dead_letters(sink, [("w0", offset, None, b"{}")], "refused")
        finally:
            await store.aclose()

    asyncio.run(fill())
    r = runner.invoke(app, ["deadletters", "retry", "--sink", "sql", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "1 dead letter(s) queued" in r.stdout and "note:" not in r.stderr
    r = runner.invoke(app, ["deadletters", "retry", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "2 dead letter(s) queued" in r.stdout
    assert "wait until a gateway runs with them again: old-s3 (2)" in r.stderr


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "sluiceway.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "serve" in r.stdout


def test_serve_port_in_use_exits_1(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "sluiceway.cli", "serve", "--data-dir", str(tmp_path),
                            "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot listen" in r.stderr


def test_second_serve_on_same_data_dir_is_refused(tmp_path):
    import fcntl
    import os

    fd = os.open(tmp_path / "delivery.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = subprocess.run([sys.executable, "-m", "sluiceway.cli", "serve", "--data-dir", str(tmp_path),
                            "--port", "0"], capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
    assert r.returncode == 2 and "another sluice process" in r.stderr

import subprocess

import pytest

from sluiceway.runtime.instance import InstanceIdError, instance_id


def test_instance_id_is_made_once_and_kept(tmp_path):
    first = instance_id(tmp_path / "d")
    assert first == instance_id(tmp_path / "d") and len(first) == 8
    assert instance_id(tmp_path / "other") != first
    assert (tmp_path / "d" / "instance-id").read_text().strip() == first
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["instance-id"]


async def test_two_gateways_sharing_a_bucket_never_share_keys(tmp_path):
    from tests.helpers import eventually, make_config, running_gateway

    shared = tmp_path / "bucket"
    keys = []
    for name in ("a", "b"):
        cfg = make_config(tmp_path / name, sinks=[{"type": "object_store", "name": "o", "path": str(shared),
                                                   "batch": {"max_age": "10ms"}}])
        async with running_gateway(cfg) as (gw, client):
            _, token = await gw.store.create_token("acme", ["ingest"])
            r = await client.post("/v1/streams/u/events", json={"gw": name},
                                  headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 202

            async def written():
                return len(list(shared.rglob("*.jsonl.gz"))) == len(keys) + 1

            await eventually(written)
            keys = sorted(str(p) for p in shared.rglob("*.jsonl.gz"))
    assert len(keys) == 2  # both gateways' first batch is w0 offsets 1-1, yet two objects


@pytest.mark.parametrize("content", ["BAD ID\n", "", "\x00\x00\x00\x00"])
def test_a_damaged_instance_id_is_refused_by_name_not_replaced(tmp_path, content):
    """The id is part of every object key: a file that does not hold one is an error to look at
    (replacing it silently would send batches in flight again under new keys)."""
    (tmp_path / "instance-id").write_text(content)
    with pytest.raises(InstanceIdError, match="instance-id holds .*restore the file from a backup"):
        instance_id(tmp_path)
    assert (tmp_path / "instance-id").read_text() == content


def test_serve_names_a_damaged_instance_id_and_exits_1_without_a_traceback(tmp_path):
    from tests.helpers import SLUICE, free_port

    data = tmp_path / "d"
    data.mkdir()
    (data / "instance-id").write_text("BAD ID\n")
    proc = subprocess.run([*SLUICE, "serve", "--data-dir", str(data), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "error: " in proc.stderr and "instance-id holds 'BAD ID'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

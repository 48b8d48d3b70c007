from __future__ import annotations

from sluiceway.agent.cleanup import delete_sent
from sluiceway.agent.collect import scan
from tests.agent.conftest import write


def test_deletes_packed_files_and_their_emptied_parents_only(data_dir):
    write(data_dir / "a" / "b" / "c" / "x.json")
    write(data_dir / "a" / "keep.txt")
    write(data_dir / "top.json")
    (data_dir / "unrelated-empty").mkdir()
    packed = scan(data_dir, max_bytes=1000, settle_time=0).files
    write(data_dir / "a" / "b" / "late.json")  # arrived after the scan: not sent, not deleted
    deleted, kept = delete_sent(data_dir, packed)
    assert sorted(p.name for p in deleted) == ["top.json", "x.json"] and kept == []
    left = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))
    assert left == ["a", "a/b", "a/b/late.json", "a/keep.txt", "unrelated-empty"]


def test_changed_or_replaced_files_are_kept(data_dir):
    grown = write(data_dir / "grown.json", "{}")
    touched = write(data_dir / "touched.json", "{}")
    gone = write(data_dir / "gone.json", "{}")
    packed = scan(data_dir, max_bytes=1000, settle_time=0).files
    grown.write_text('{"more": 1}')
    write(touched, "{}", age=5)  # same size, new mtime
    gone.unlink()
    deleted, kept = delete_sent(data_dir, packed)
    assert deleted == [] and sorted(p.name for p in kept) == ["grown.json", "touched.json"]
    assert grown.exists() and touched.exists()

from __future__ import annotations

import os
import time
from pathlib import Path

from sluiceway.agent.collect import FileEntry, chunk, scan
from tests.agent.conftest import write


def rels(files) -> list[str]:
    return [f.rel for f in files]


def test_everything_when_no_allowed_subdirs(data_dir):
    write(data_dir / "root.json")
    write(data_dir / "feedback" / "fb1.json")
    write(data_dir / "transcripts" / "user1" / "conv1" / "t1.json")
    write(data_dir / "notes.txt")
    write(data_dir / "feedback" / "fb.json.tmp")
    (data_dir / "dir.json").mkdir()
    found = scan(data_dir, max_bytes=1000, settle_time=0)
    assert rels(found.files) == ["feedback/fb1.json", "root.json", "transcripts/user1/conv1/t1.json"]
    assert found.files[1].path == data_dir / "root.json"
    assert found.unknown == 0


def test_allowed_subdirs_only(data_dir):
    write(data_dir / "root.json")
    write(data_dir / "feedback" / "fb1.json")
    write(data_dir / "transcripts" / "t1.json")
    write(data_dir / "other" / "deep" / "x.json")
    found = scan(data_dir, allowed_subdirs=["feedback", "transcripts", "absent"], max_bytes=1000, settle_time=0)
    assert rels(found.files) == ["feedback/fb1.json", "transcripts/t1.json"]
    assert found.unknown == 2  # root.json, other/deep/x.json


def test_symlinks_skipped_and_reported(data_dir, tmp_path):
    outside = write(tmp_path / "outside" / "secret.json")
    write(data_dir / "real.json")
    (data_dir / "link.json").symlink_to(outside)
    (data_dir / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    (data_dir / "dangling.json").symlink_to(tmp_path / "nothing.json")
    found = scan(data_dir, max_bytes=1000, settle_time=0)
    assert rels(found.files) == ["real.json"]
    assert sorted(p.name for p in found.symlinks) == ["dangling.json", "link.json", "linkdir"]


def test_young_files_are_unstable(data_dir):
    write(data_dir / "old.json")
    write(data_dir / "new.json", age=0)
    found = scan(data_dir, max_bytes=1000, settle_time=30, sleep=lambda s: None)
    assert rels(found.files) == ["old.json"]
    assert [p.name for p in found.unstable] == ["new.json"]


def test_files_changing_during_settle_time_are_unstable(data_dir):
    growing = write(data_dir / "growing.json")
    write(data_dir / "done.json")

    def writer_appends(seconds: float) -> None:
        with growing.open("a") as f:
            f.write("more")

    found = scan(data_dir, max_bytes=1000, settle_time=0.01, sleep=writer_appends)
    assert rels(found.files) == ["done.json"]
    assert found.unstable == [growing]


def test_oversized_files_skipped_not_deleted(data_dir):
    big = write(data_dir / "big.json", "x" * 101)
    write(data_dir / "small.json", "x" * 100)
    found = scan(data_dir, max_bytes=100, settle_time=0)
    assert rels(found.files) == ["small.json"]
    assert [f.path for f in found.oversized] == [big]
    assert big.exists()


def fe(name: str, size: int) -> FileEntry:
    return FileEntry(Path(name), name, size, 0)


def test_chunking_is_greedy_over_uncompressed_sizes():
    files = [fe("a", 40), fe("b", 60), fe("c", 1), fe("d", 100), fe("e", 30), fe("f", 30)]
    chunks = chunk(files, 100)
    assert [[f.rel for f in c] for c in chunks] == [["a", "b"], ["c"], ["d"], ["e", "f"]]
    assert chunk([], 100) == []


def test_same_as_compares_size_and_mtime(data_dir):
    p = write(data_dir / "a.json")
    entry = FileEntry.of(p, "a.json", p.lstat())
    assert entry.same_as(p.lstat())
    t = time.time() - 5
    os.utime(p, (t, t))
    assert not entry.same_as(p.lstat())

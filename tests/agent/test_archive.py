from __future__ import annotations

import io
import os
import tarfile
import tempfile

from sluiceway.agent.archive import write_archive
from sluiceway.agent.collect import scan
from tests.agent.conftest import write
from tests.agent.fake_ingress import is_gzip


def test_gzip_tar_with_relative_names_and_no_directories(data_dir):
    write(data_dir / "root.json", '{"r": 1}')
    write(data_dir / "feedback" / "fb1.json", '{"f": 1}')
    write(data_dir / "transcripts" / "user1" / "conv1" / "t1.json", '{"t": 1}')
    files = scan(data_dir, max_bytes=1000, settle_time=0).files
    seen = []
    with tempfile.TemporaryFile() as tmp:
        packed = write_archive(files, tmp, seen.append)
        tmp.seek(0)
        data = tmp.read()
    assert packed == files == seen
    assert is_gzip(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["feedback/fb1.json", "root.json", "transcripts/user1/conv1/t1.json"]
        assert all(m.isfile() for m in members)
        assert tar.extractfile("feedback/fb1.json").read() == b'{"f": 1}'  # type: ignore[union-attr]
        st = (data_dir / "root.json").stat()
        root = tar.getmember("root.json")
        assert (int(root.mtime), root.mode, root.uid) == (int(st.st_mtime), st.st_mode & 0o7777, st.st_uid)


def test_vanished_or_changed_files_are_left_out(data_dir):
    keep = write(data_dir / "keep.json")
    gone = write(data_dir / "gone.json")
    changed = write(data_dir / "changed.json")
    files = scan(data_dir, max_bytes=1000, settle_time=0).files
    gone.unlink()
    changed.write_text('{"now": "longer"}')
    with tempfile.TemporaryFile() as tmp:
        packed = write_archive(files, tmp)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r:gz") as tar:
            assert tar.getnames() == ["keep.json"]
    assert [f.path for f in packed] == [keep]


def test_file_replaced_by_symlink_is_not_followed(data_dir, tmp_path):
    p = write(data_dir / "a.json")
    files = scan(data_dir, max_bytes=1000, settle_time=0).files
    secret = write(tmp_path / "secret.json", "x")
    p.unlink()
    os.symlink(secret, p)
    with tempfile.TemporaryFile() as tmp:
        assert write_archive(files, tmp) == []

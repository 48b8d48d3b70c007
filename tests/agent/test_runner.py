from __future__ import annotations

import threading
import time
from typing import Any, Callable

from sluiceway.agent.runner import Shipper
from tests.agent.conftest import make_cfg, write
from tests.agent.fake_ingress import Reply


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll until truthy (a generous limit, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)
    return value


class Background:
    """``Shipper.run`` in a thread; ``stop()`` returns its exit code."""

    def __init__(self, shipper: Shipper):
        self.shipper = shipper
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.shipper.run(handle_signals=False)

    def stop(self) -> int | None:
        self.shipper.stop()
        self.thread.join(20)
        return self.code


def test_cycle_uploads_then_deletes_exactly_the_sent_files(data_dir, ingress):
    write(data_dir / "root.json", '{"r": 1}')
    write(data_dir / "feedback" / "fb1.json", '{"f": 1}')
    write(data_dir / "transcripts" / "u1" / "c1" / "t1.json", '{"t": 1}')
    write(data_dir / "transcripts" / "u2" / "notes.txt")
    result = Shipper(make_cfg(data_dir, ingress.url, collection_interval=0)).run_cycle()
    assert result.ok and result.request_ids == ["req-1"]
    (up,) = ingress.uploads
    assert up.members() == {"feedback/fb1.json": b'{"f": 1}', "root.json": b'{"r": 1}',
                            "transcripts/u1/c1/t1.json": b'{"t": 1}'}
    left = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))
    assert left == ["transcripts", "transcripts/u2", "transcripts/u2/notes.txt"]
    assert data_dir.is_dir()


def test_only_allowed_subdirs_sent_and_deleted(data_dir, ingress):
    write(data_dir / "root.json")
    write(data_dir / "feedback" / "a.json")
    write(data_dir / "other" / "b.json")
    Shipper(make_cfg(data_dir, ingress.url, allowed_subdirs=["feedback"])).run_cycle()
    assert set(ingress.uploads[0].members()) == {"feedback/a.json"}
    assert sorted(p.name for p in data_dir.rglob("*.json")) == ["b.json", "root.json"]


def test_no_cleanup_keeps_files(data_dir, ingress):
    write(data_dir / "a.json")
    assert Shipper(make_cfg(data_dir, ingress.url, cleanup_after_send=False)).run_cycle().ok
    assert len(ingress.accepted) == 1 and (data_dir / "a.json").exists()


def test_nothing_to_collect_sends_nothing(data_dir, ingress):
    write(data_dir / "readme.txt")
    assert Shipper(make_cfg(data_dir, ingress.url)).run_cycle().ok
    assert ingress.uploads == []


def test_chunks_and_a_failed_chunk_keeps_its_files(data_dir, ingress):
    for name in "abcde":
        write(data_dir / f"{name}.json", name * 40)
    ingress.script += [Reply(202), Reply(202), Reply(500)]
    shipper = Shipper(make_cfg(data_dir, ingress.url, max_archive_bytes=100))
    result = shipper.run_cycle()
    assert not result.ok and result.request_ids == ["req-1", "req-2"]
    assert [sorted(u.members()) for u in ingress.uploads] == [["a.json", "b.json"], ["c.json", "d.json"], ["e.json"]]
    assert [p.name for p in data_dir.iterdir()] == ["e.json"]
    assert shipper.run_cycle().ok
    assert list(data_dir.iterdir()) == []


def test_file_changed_after_archiving_is_not_deleted(data_dir, ingress):
    write(data_dir / "stable.json")
    busy = write(data_dir / "sub" / "busy.json", '{"v": 1}')
    ingress.on_request = lambda up: busy.write_text('{"v": 2, "more": true}')
    assert Shipper(make_cfg(data_dir, ingress.url)).run_cycle().ok
    assert ingress.uploads[0].members()["sub/busy.json"] == b'{"v": 1}'
    assert not (data_dir / "stable.json").exists()
    assert busy.read_text() == '{"v": 2, "more": true}'
    ingress.on_request = None
    assert Shipper(make_cfg(data_dir, ingress.url)).run_cycle().ok
    assert ingress.uploads[1].members() == {"sub/busy.json": b'{"v": 2, "more": true}'}
    assert list(data_dir.iterdir()) == []


def test_oversized_file_is_kept_and_skipped_every_cycle(data_dir, ingress):
    big = write(data_dir / "big.json", "x" * 200)
    write(data_dir / "small.json")
    shipper = Shipper(make_cfg(data_dir, ingress.url, max_archive_bytes=100))
    assert shipper.run_cycle().ok and shipper.run_cycle().ok
    assert [set(u.members()) for u in ingress.uploads] == [{"small.json"}]
    assert big.exists()


def test_failures_keep_files_back_off_and_finally_send_once(data_dir, ingress):
    write(data_dir / "a.json")
    write(data_dir / "deep" / "b.json")
    ingress.script += [Reply(500), Reply(hang=True), Reply(503), Reply(429, headers={"Retry-After": "0.02"})]
    shipper = Shipper(make_cfg(data_dir, ingress.url, collection_interval=3600, ingress_connection_timeout=1))
    bg = Background(shipper)
    eventually(lambda: ingress.accepted)
    eventually(lambda: not (data_dir / "deep").exists())
    assert bg.stop() == 0
    assert [u.answered for u in ingress.uploads[:5]] == [500, 0, 503, 429, 202]
    assert all(set(u.members()) == {"a.json", "deep/b.json"} for u in ingress.uploads[:5])
    assert len(ingress.accepted) == 1
    assert list(data_dir.iterdir()) == []
    retries = [s for why, s in shipper.waits if why == "retry"]
    assert len(retries) == 4 and all(0 <= s <= 0.05 for s in retries)
    assert shipper.waits[4][0] == "next collection"


def test_rejection_waits_retry_interval(data_dir, ingress):
    write(data_dir / "a.json")
    ingress.script.append(Reply(413, b"File exceeds maximum file size"))
    shipper = Shipper(make_cfg(data_dir, ingress.url, collection_interval=3600))
    bg = Background(shipper)
    eventually(lambda: ingress.accepted)
    assert bg.stop() == 0
    assert shipper.waits[0] == ("retry", 0.05)
    assert not (data_dir / "a.json").exists()


def test_once_mode_exit_codes(data_dir, ingress):
    write(data_dir / "a.json")
    ingress.script.append(Reply(500))
    assert Shipper(make_cfg(data_dir, ingress.url, collection_interval=0)).run(handle_signals=False) == 1
    assert (data_dir / "a.json").exists() and len(ingress.uploads) == 1
    assert Shipper(make_cfg(data_dir, ingress.url, collection_interval=0)).run(handle_signals=False) == 0
    assert not (data_dir / "a.json").exists()


def test_stop_runs_a_final_collection(data_dir, ingress):
    write(data_dir / "first.json")
    bg = Background(Shipper(make_cfg(data_dir, ingress.url, collection_interval=3600)))
    eventually(lambda: not (data_dir / "first.json").exists())
    write(data_dir / "last.json")
    assert bg.stop() == 0
    assert [set(u.members()) for u in ingress.uploads] == [{"first.json"}, {"last.json"}]


def test_failed_final_collection_exits_1(data_dir, ingress):
    write(data_dir / "first.json")
    bg = Background(Shipper(make_cfg(data_dir, ingress.url, collection_interval=3600)))
    eventually(lambda: not (data_dir / "first.json").exists())
    write(data_dir / "last.json")
    ingress.script.append(Reply(500))
    assert bg.stop() == 1
    assert (data_dir / "last.json").exists()

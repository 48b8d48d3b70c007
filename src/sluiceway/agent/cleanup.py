"""Delete what an accepted archive holds, and nothing else.

Only the entries ``write_archive`` packed are candidates. Each is deleted only if it is still
the same regular file (size and mtime as archived): a file rewritten or appended to after it
was packed is kept and shipped again next cycle. Then directories emptied by the deletions are
removed, deepest first, up to but not including ``data_dir``; a directory that is not empty
stays. (The check and the unlink are two steps: a write landing between them is lost with the
file. Writers that create files atomically, by rename, are never affected.)
"""

from __future__ import annotations

import os
from pathlib import Path

from sluiceway.agent.collect import FileEntry
from sluiceway.telemetry.logging import get_logger

log = get_logger("sluiceway.agent")


def delete_sent(data_dir: Path, packed: list[FileEntry]) -> tuple[list[Path], list[Path]]:
    """Return (deleted, kept-because-changed)."""
    deleted: list[Path] = []
    kept: list[Path] = []
    for fe in packed:
        try:
            st = fe.path.lstat()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.error("cannot check sent file; kept", path=str(fe.path), error=e.strerror)
            continue
        if not fe.same_as(st):
            log.warning("file changed after it was archived; kept for the next cycle", path=str(fe.path))
            kept.append(fe.path)
            continue
        try:
            fe.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.error("failed to remove sent file", path=str(fe.path), error=e.strerror)
            continue
        log.debug("removed sent file", path=str(fe.path))
        deleted.append(fe.path)
    _remove_empty_parents(data_dir, deleted)
    return deleted, kept


def _remove_empty_parents(data_dir: Path, deleted: list[Path]) -> None:
    dirs: set[Path] = set()
    for p in deleted:
        for parent in p.parents:
            if parent == data_dir or data_dir not in parent.parents:
                break
            dirs.add(parent)
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass  # not empty (or already gone): leave it

"""Pack collected files into one gzip tar, written to a (temporary) file, never built in memory.

Members are named by their path relative to ``data_dir``; no directory entries, no manifest.
Mode, owner and mtime (whole seconds, as ``tar`` writes them: no PAX record per member) come
from the file; owner and group names are looked up once per id. gzip level 6, ``gzip``'s and
``tar czf``'s default. Each file is opened without following symlinks and
checked against its scan (size and mtime): a file that vanished or changed since is left out
of this archive (the next cycle sees it again). The archive reads exactly the scanned size;
``write_archive`` returns the entries it packed, which are the only candidates for deletion.
"""

from __future__ import annotations

import errno
import functools
import grp
import gzip
import os
import pwd
import stat
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from sluiceway.agent.collect import FileEntry
from sluiceway.telemetry.logging import get_logger

log = get_logger("sluiceway.agent")

ARCHIVE_FILENAME = "lightspeed-assistant.tgz"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@functools.lru_cache(maxsize=64)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@functools.lru_cache(maxsize=64)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def _member(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, _user(st.st_uid), _group(st.st_gid)
    return info


def write_archive(files: list[FileEntry], dest: BinaryIO,
                  on_file: Callable[[FileEntry], None] | None = None) -> list[FileEntry]:
    """Write the gzip tar to ``dest`` (left open, positioned at its end); return what was packed."""
    packed: list[FileEntry] = []
    # filename="" keeps the gzip header free of a name (magic 1f 8b 08 00, like the original).
    with gzip.GzipFile(filename="", mode="wb", fileobj=dest, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for fe in files:
            try:
                fd = os.open(fe.path, os.O_RDONLY | _O_NOFOLLOW)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    log.warning("file became a symlink; skipped", path=str(fe.path))
                elif e.errno != errno.ENOENT:
                    log.warning("cannot open file; skipped", path=str(fe.path), error=e.strerror)
                continue
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not fe.same_as(st):
                    log.info("file changed since scan; left for the next cycle", path=str(fe.path))
                    continue
                tar.addfile(_member(fe.rel, st), f)  # exactly info.size bytes; OSError if the file shrank meanwhile
            packed.append(fe)
            if on_file:
                on_file(fe)
    return packed

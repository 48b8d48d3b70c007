"""Pack collected files into one gzip tar, written to a (temporary) file, never built in memory.

Members are named by their path relative to ``data_dir``; no directory entries, no manifest.
Mode, owner and mtime come from the file. Each file is opened without following symlinks and
checked against its scan (size and mtime): a file that vanished or changed since is left out
of this archive (the next cycle sees it again). The archive reads exactly the scanned size;
``write_archive`` returns the entries it packed, which are the only candidates for deletion.
"""

from __future__ import annotations

import errno
import gzip
import os
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from sluiceway.agent.collect import FileEntry
from sluiceway.telemetry.logging import get_logger

log = get_logger("sluiceway.agent")

ARCHIVE_FILENAME = "lightspeed-assistant.tgz"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def write_archive(files: list[FileEntry], dest: BinaryIO,
                  on_file: Callable[[FileEntry], None] | None = None) -> list[FileEntry]:
    """Write the gzip tar to ``dest`` (left open, positioned at its end); return what was packed."""
    packed: list[FileEntry] = []
    # filename="" keeps the gzip header free of a name (magic 1f 8b 08 00, like the original).
    with gzip.GzipFile(filename="", mode="wb", fileobj=dest) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
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
                if not fe.same_as(os.fstat(f.fileno())):
                    log.info("file changed since scan; left for the next cycle", path=str(fe.path))
                    continue
                info = tar.gettarinfo(arcname=fe.rel, fileobj=f)
                tar.addfile(info, f)  # exactly info.size bytes; OSError if the file shrank meanwhile
            packed.append(fe)
            if on_file:
                on_file(fe)
    return packed

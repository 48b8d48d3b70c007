"""Building (hostile) archives for tests."""

from __future__ import annotations

import gzip
import io
import tarfile


def tgz(files: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None, gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def bomb(members: int, each: int) -> bytes:
    """A gzip tar of ``members`` members of ``each`` zero bytes (compresses ~1000:1), written
    as a stream so the test itself never holds the expanded bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as g:
        with tarfile.open(fileobj=g, mode="w") as tar:
            for i in range(members):
                info = tarfile.TarInfo(f"zeros{i}.json")
                info.size = each
                tar.addfile(info, _Zeros(each))
    return buf.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n

"""A data dir's instance id: a short random name made once and kept in ``<data_dir>/instance-id``.

Object keys include it (through ``Batch.partition``), so several gateways writing to one
bucket never produce the same key, even though each has a journal partition ``w0``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

INSTANCE_RE = re.compile(r"[a-z0-9]{4,32}\Z")


def instance_id(data_dir: Path) -> str:
    path = data_dir / "instance-id"
    try:
        value = path.read_text().strip()
        if INSTANCE_RE.match(value):
            return value
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(4)
    tmp = path.with_name(f".instance-id.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # atomic create; loses to a concurrent creator
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        tmp.unlink()
    return value

"""A data dir's instance id: a short random name made once and kept in ``<data_dir>/instance-id``.

Object keys include it (through ``Batch.partition``), so several gateways writing to one
bucket never produce the same key, even though each has a journal partition ``w0``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from sluiceway.errors import SluicewayError
from sluiceway.fsutil import fsync_dir

INSTANCE_RE = re.compile(r"[a-z0-9]{4,32}\Z")


class InstanceIdError(SluicewayError):
    """``<data_dir>/instance-id`` exists and does not hold an instance id."""


def _checked(path: Path, value: str) -> str:
    if not INSTANCE_RE.match(value):
        raise InstanceIdError(
            f"{path} holds {value[:40]!r}, not an instance id ({INSTANCE_RE.pattern[:-2]}): restore the file from a "
            "backup of this data dir, or, if it is lost, delete it to make a new id (batches in flight are then sent "
            "again under new object keys, beside any copy the old id had written)")
    return value


def existing_instance_id(data_dir: Path) -> str | None:
    """The data dir's id, or None if it has none yet (nothing was ever delivered from it)."""
    path = data_dir / "instance-id"
    try:
        return _checked(path, path.read_text(errors="replace").strip())
    except FileNotFoundError:
        return None


def instance_id(data_dir: Path) -> str:
    """The data dir's id, made (durably, and by one process only) if there is none yet."""
    value = existing_instance_id(data_dir)
    if value is not None:
        return value
    path = data_dir / "instance-id"
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
        value = _checked(path, path.read_text(errors="replace").strip())
    finally:
        tmp.unlink()
    fsync_dir(data_dir)
    return value
